// One Envoy access-log record's fields, as the text and JSON readers fill them: the slot each key
// was read into, typed and defaulted, ready for buildEnvoyEvent.
import { readCount, readStatus, readText, traceIdFromTraceparent } from './read-values.ts';
import { SLOT } from './envoy-keys.ts';

/** The override lists of a record that has none: frozen, so a push that skipped assignOverride throws. */
const NO_OVERRIDES: unknown[] = Object.freeze([]) as unknown as unknown[];

/** One record's Envoy fields, as text ('' = unset) and numbers (0 = unset). */
export class EnvoyFields {
  startTime: unknown = undefined;
  method = '';
  path = '';
  protocol = '';
  status = 0;
  flags = '';
  details = '';
  termDetails = '';
  upstreamFailure = '';
  downstreamFailure = '';
  bytesIn = 0;
  bytesOut = 0;
  durationMs = 0;
  requestId = '';
  authority = '';
  upstreamHost = '';
  cluster = '';
  downstreamLocal = '';
  downstreamRemote = '';
  downstreamDirectRemote = '';
  sni = '';
  /** True when the record has an SNI column at all (Istio formats), so '' means "no TLS". */
  hasSni = false;
  downstreamPeerSan = '';
  upstreamPeerSan = '';
  upstreamLocalSan = '';
  downstreamLocalSan = '';
  downstreamTls = '';
  /** True when the record has a downstream TLS version column at all, so '' means plaintext. */
  hasDownstreamTls = false;
  upstreamTls = '';
  traceId = '';
  forwardedFor = '';
  embeddedLog = '';
  /**
   * `fieldMap` overrides: event field names and their raw values, in record order. Both start as
   * the shared empty NO_OVERRIDES and get arrays of their own at the first override, so a record
   * without overrides (nearly all) allocates none.
   */
  overrideFields: string[] = NO_OVERRIDES as string[];
  overrideValues: unknown[] = NO_OVERRIDES;

  /** Clears every field for the next record. */
  reset(): this {
    this.startTime = undefined;
    this.method = this.path = this.protocol = this.flags = this.details = this.termDetails = '';
    this.upstreamFailure = this.downstreamFailure = this.requestId = this.authority = '';
    this.upstreamHost = this.cluster = this.downstreamLocal = this.downstreamRemote = '';
    this.downstreamDirectRemote = this.sni = this.downstreamPeerSan = this.upstreamPeerSan = '';
    this.upstreamLocalSan = this.downstreamLocalSan = this.downstreamTls = this.upstreamTls = '';
    this.traceId = this.forwardedFor = this.embeddedLog = '';
    this.status = this.bytesIn = this.bytesOut = this.durationMs = 0;
    this.hasSni = this.hasDownstreamTls = false;
    if (this.overrideFields.length > 0) {
      this.overrideFields = NO_OVERRIDES as string[];
      this.overrideValues = NO_OVERRIDES;
    }
    return this;
  }

  /** Stores `value` (string, number or null, as JSON or text gives it) into `slot`. */
  assign(slot: number, value: unknown): void {
    switch (slot) {
      case SLOT.startTime:
        // Envoy writes %START_TIME% as text (epoch seconds with `%s`); a number is not its output.
        this.startTime = typeof value === 'string' ? value : undefined;
        break;
      case SLOT.mappedTime:
        this.startTime = value;
        break;
      case SLOT.method:
        this.method = readText(value);
        break;
      case SLOT.path:
        this.path = readText(value);
        break;
      case SLOT.protocol:
        this.protocol = readText(value);
        break;
      case SLOT.status:
        this.status = readStatus(value);
        break;
      case SLOT.flags:
        this.flags = readText(value);
        break;
      case SLOT.details:
        this.details = readText(value);
        break;
      case SLOT.termDetails:
        this.termDetails = readText(value);
        break;
      case SLOT.upstreamFailure:
        this.upstreamFailure = readText(value);
        break;
      case SLOT.downstreamFailure:
        this.downstreamFailure = readText(value);
        break;
      case SLOT.bytesIn:
        this.bytesIn = readCount(value);
        break;
      case SLOT.bytesOut:
        this.bytesOut = readCount(value);
        break;
      case SLOT.duration:
        this.durationMs = readCount(value);
        break;
      case SLOT.requestId:
        this.requestId = readText(value);
        break;
      case SLOT.authority:
        this.authority = readText(value);
        break;
      case SLOT.upstreamHost:
        this.upstreamHost = readText(value);
        break;
      case SLOT.cluster:
        this.cluster = readText(value);
        break;
      case SLOT.downstreamLocal:
        this.downstreamLocal = readText(value);
        break;
      case SLOT.downstreamRemote:
        this.downstreamRemote = readText(value);
        break;
      case SLOT.downstreamDirectRemote:
        this.downstreamDirectRemote = readText(value);
        break;
      case SLOT.sni:
        this.sni = readText(value);
        this.hasSni = true;
        break;
      case SLOT.downstreamPeerSan:
        this.downstreamPeerSan = readText(value);
        break;
      case SLOT.upstreamPeerSan:
        this.upstreamPeerSan = readText(value);
        break;
      case SLOT.upstreamLocalSan:
        this.upstreamLocalSan = readText(value);
        break;
      case SLOT.downstreamLocalSan:
        this.downstreamLocalSan = readText(value);
        break;
      case SLOT.downstreamTls:
        this.downstreamTls = readText(value);
        this.hasDownstreamTls = true;
        break;
      case SLOT.upstreamTls:
        this.upstreamTls = readText(value);
        break;
      case SLOT.traceId:
        this.traceId = readText(value);
        break;
      case SLOT.traceparent:
        if (this.traceId === '') this.traceId = traceIdFromTraceparent(readText(value));
        break;
      case SLOT.forwardedFor:
        this.forwardedFor = readText(value);
        break;
      case SLOT.embeddedLog:
        this.embeddedLog = typeof value === 'string' ? value : '';
        break;
      default:
        break;
    }
  }

  /** Remembers a `fieldMap` value to write into event field `field` after normalization. */
  assignOverride(field: string, value: unknown): void {
    if (this.overrideFields === NO_OVERRIDES) {
      this.overrideFields = [];
      this.overrideValues = [];
    }
    this.overrideFields.push(field);
    this.overrideValues.push(value);
  }
}
