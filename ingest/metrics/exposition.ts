// A reader of the Prometheus text exposition format and OpenMetrics: what Envoy, Istio's ztunnel
// and the Linkerd proxy serve on their metrics ports. It also reads a series pasted from a query
// result (name, label set and value spread over several lines), which people keep as evidence.

/** One sample line: `name{labels} value [timestamp]`. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** As written: milliseconds in the Prometheus text format, seconds in OpenMetrics. */
  readonly timestamp?: number;
}

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'unknown' | 'info' | 'stateset' | 'gaugehistogram';

/** What one exposition holds. */
export interface Exposition {
  readonly samples: MetricSample[];
  /** `# TYPE` per metric family name. */
  readonly types: Readonly<Record<string, MetricType>>;
  /** Lines that could not be read, 1-based, with a short reason; the rest is still returned. */
  readonly errors: Array<{ line: number; reason: string }>;
}

const METRIC_TYPES = new Set<string>(['counter', 'gauge', 'histogram', 'summary', 'untyped', 'unknown', 'info', 'stateset', 'gaugehistogram']);
const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_START = /[a-zA-Z_]/;
const LABEL_CHAR = /[a-zA-Z0-9_]/;
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
/** A pasted series may span this many lines at most; beyond it the record is malformed. */
const MAX_JOINED_LINES = 512;

/** Parses an exposition; never throws, malformed lines are listed in `errors`. */
export function parseExposition(text: string): Exposition {
  const samples: MetricSample[] = [];
  const types: Record<string, MetricType> = {};
  const errors: Array<{ line: number; reason: string }> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    let record = (lines[i] as string).trim();
    if (record === '') continue;
    if (record.startsWith('#')) {
      if (/^#\s*EOF\s*$/.test(record)) break;
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)\s*$/.exec(record);
      if (type && METRIC_TYPES.has((type[2] as string).toLowerCase())) types[type[1] as string] = (type[2] as string).toLowerCase() as MetricType;
      continue;
    }
    // A pasted query result puts the name, each label and the value on lines of their own.
    let joined = 0;
    while (i + 1 < lines.length && joined < MAX_JOINED_LINES && needsNextLine(record, (lines[i + 1] as string).trim())) {
      i++;
      joined++;
      record = `${record} ${(lines[i] as string).trim()}`;
    }
    const sample = parseSampleLine(record);
    if (typeof sample === 'string') errors.push({ line: first + 1, reason: sample });
    else samples.push(sample);
  }
  return { samples, types, errors };
}

/** The `# TYPE` of the family a sample belongs to (`x_total` and `x_bucket` belong to `x`). */
export function typeOfSample(types: Readonly<Record<string, MetricType>>, name: string): MetricType | undefined {
  const exact = types[name];
  if (exact) return exact;
  const suffix = /_(total|created|count|sum|bucket|gcount|gsum|info)$/.exec(name);
  return suffix ? types[name.slice(0, suffix.index)] : undefined;
}

function needsNextLine(record: string, next: string): boolean {
  if (next === '' || next.startsWith('#')) return false;
  // Inside an open label set only a label pair or the closing brace continues it; anything else
  // means this line was malformed, and it must not swallow the good lines after it.
  if (openBraces(record) > 0) return /^(\}|[a-zA-Z_][a-zA-Z0-9_]*\s*=\s*")/.test(next);
  if (/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(record)) return next.startsWith('{');
  return record.endsWith('}') && /^[-+]?(?:\d|\.\d|NaN|Inf)/.test(next);
}

/** Braces still open at the end of `record`, ignoring those inside quoted label values. */
function openBraces(record: string): number {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < record.length; i++) {
    const c = record[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
  }
  return depth;
}

/** One sample, or a short reason when the line is malformed. */
function parseSampleLine(line: string): MetricSample | string {
  let i = 0;
  const n = line.length;
  if (!NAME_START.test(line[0] ?? '')) return 'bad_metric_name';
  while (i < n && NAME_CHAR.test(line[i] as string)) i++;
  const name = line.slice(0, i);
  const labels: Record<string, string> = {};
  while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (i < n && (line[i] === ' ' || line[i] === '\t' || line[i] === ',')) i++;
      if (i >= n) return 'unterminated_labels';
      if (line[i] === '}') {
        i++;
        break;
      }
      const start = i;
      if (!LABEL_START.test(line[i] as string)) return 'bad_label_name';
      while (i < n && LABEL_CHAR.test(line[i] as string)) i++;
      const key = line.slice(start, i);
      while (i < n && line[i] === ' ') i++;
      if (line[i] !== '=') return 'bad_label_pair';
      i++;
      while (i < n && line[i] === ' ') i++;
      if (line[i] !== '"') return 'bad_label_value';
      i++;
      let value = '';
      let closed = false;
      while (i < n) {
        const c = line[i] as string;
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return 'unterminated_label_value';
      labels[key] = value;
    }
  }
  const rest = line.slice(i).trim();
  // Drop an OpenMetrics exemplar (`value # {trace_id="…"} 1.0`).
  const hash = rest.indexOf(' #');
  const fields = (hash >= 0 ? rest.slice(0, hash) : rest).split(/\s+/).filter(Boolean);
  if (fields.length === 0) return 'missing_value';
  if (fields.length > 2) return 'trailing_garbage';
  const value = parseValue(fields[0] as string);
  if (value === undefined) return 'bad_value';
  if (fields.length === 2) {
    const timestamp = Number(fields[1]);
    if (!NUMBER.test(fields[1] as string) || !Number.isFinite(timestamp)) return 'bad_timestamp';
    return { name, labels, value, timestamp };
  }
  return { name, labels, value };
}

function parseValue(text: string): number | undefined {
  if (NUMBER.test(text)) return Number(text);
  switch (text) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    default:
      return undefined;
  }
}
