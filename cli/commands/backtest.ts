// `ztwatch backtest FILE... --out anomalies.ndjson [--format F] [--config ztwatch.yaml]`: replays
// recorded files through ingest, a temporary embedded store and the detectors, in event-time
// order, and writes every anomaly (its final lifecycle state) as one NDJSON line.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { loadConfig, type FrozenConfig } from '../../core/config.ts';
import { createError } from '../../core/errors.ts';
import { createMetrics } from '../../core/metrics.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { runBacktest, type RecordGroup, type RecordParser, type ReplayProgress, type ReplaySource } from '../../detectors/backtest.ts';
import { detectFormat } from '../../ingest/parsers/index.ts';
import { AUTO_FORMAT, createIngestor, isKnownFormat } from '../../ingest/pipeline.ts';
import { splitRecords } from '../../ingest/records.ts';
import { createIncidentCorrelator } from '../../incidents/correlator.ts';
import { parseCommandArgs } from '../args.ts';

const USAGE = `usage: ztwatch backtest FILE... --out anomalies.ndjson [--incidents-out incidents.ndjson] [--format F] [--config ztwatch.yaml] [--quiet]

Replays recorded files (any supported format, detected per record unless --format is given)
through ingest, a temporary embedded store and the detectors, in event-time order. Writes every
anomaly as NDJSON (id, detector, severity, status, first_seen, detected_at, last_seen, src, dst,
score, summary, evidence) to --out and, with --incidents-out, every incident the anomalies were
grouped into (id, title, severity, status, first_seen, detected_at, last_seen, actors, targets,
members, timeline, evidence, notify), in its final state. Shows progress on stderr and prints a
summary.`;

/** Bytes read per file chunk. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** Files that must be read whole (a JSON array, pretty-printed objects) may be at most this big. */
const MAX_WHOLE_FILE_BYTES = 256 * 1024 * 1024;

/** True when the file's first record is a JSON array or an object spread over several lines. */
export async function needsWholeFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '').trimStart();
    // A JSON array opens with `[` then an element; an Envoy text log line opens with `[2026-…`.
    if (/^\[\s*[{["\]]/.test(head)) return true;
    if (!head.startsWith('{')) return false;
    const firstLine = head.split('\n', 1)[0]?.trimEnd() ?? '';
    return !firstLine.endsWith('}');
  } finally {
    await handle.close();
  }
}

/**
 * A file as a replay source: read as a stream of lines (NDJSON, text logs), or whole when it is a
 * JSON array or pretty-printed JSON. `format` forces a parser; otherwise the format is detected
 * once for the file when its first records agree (records it then rejects are detected one by
 * one), or per record.
 */
export function createFileSource(path: string, options: { format?: string | undefined; maxLineBytes: number }): ReplaySource {
  let format = options.format ?? AUTO_FORMAT;
  if (!isKnownFormat(format)) throw createError('INGEST_UNKNOWN_SOURCE', format);
  let perFile = false;
  const group = (records: string[]): RecordGroup => {
    if (format === AUTO_FORMAT && !perFile && records.length > 0) {
      const seen = new Set(records.slice(0, 50).map((r) => detectFormat(r)));
      const only = seen.size === 1 ? [...seen][0] : undefined;
      if (only !== undefined) {
        format = only;
        perFile = true;
      }
    }
    return perFile ? { format, records, fallbackFormat: AUTO_FORMAT } : { format, records };
  };
  let iterator: AsyncIterator<string> | undefined;
  let carry = '';
  let whole: boolean | undefined;
  let finished = false;
  const split = (text: string) => splitRecords(text, { maxLineBytes: options.maxLineBytes });
  return {
    name: path,
    async next() {
      if (finished) return undefined;
      if (whole === undefined) {
        let size: number;
        try {
          size = (await stat(path)).size;
          whole = await needsWholeFile(path);
        } catch (cause) {
          throw createError('INGEST_FILE_UNREADABLE', path, { cause });
        }
        if (whole && size > MAX_WHOLE_FILE_BYTES) throw createError('INGEST_FILE_UNREADABLE', `${path}: a JSON array or pretty-printed file larger than ${MAX_WHOLE_FILE_BYTES} bytes; convert it to NDJSON`);
        iterator = createReadStream(path, { encoding: 'utf8', highWaterMark: whole ? 16 * 1024 * 1024 : READ_CHUNK_BYTES })[Symbol.asyncIterator]() as AsyncIterator<string>;
      }
      const it = iterator as AsyncIterator<string>;
      if (whole) {
        let text = '';
        for (let r = await it.next(); !r.done; r = await it.next()) text += r.value;
        finished = true;
        const { records, rejected } = split(text);
        return { groups: [group(records)], rejected };
      }
      const r = await it.next();
      if (r.done) {
        finished = true;
        if (carry.trim() === '') return undefined;
        const { records, rejected } = split(carry);
        carry = '';
        return { groups: [group(records)], rejected };
      }
      const text = carry + r.value;
      const cut = text.lastIndexOf('\n');
      carry = cut < 0 ? text : text.slice(cut + 1);
      const { records, rejected } = split(cut < 0 ? '' : text.slice(0, cut + 1));
      return { groups: [group(records)], rejected };
    },
    async close() {
      await iterator?.return?.();
    },
  };
}

/** The ingest pipeline's parser with the config's field map: the same parsing as live ingest. */
export function createRecordParser(config: FrozenConfig): RecordParser {
  const ingestor = createIngestor({ bus: new MemoryBus(), metrics: createMetrics(), parseOptions: { fieldMap: config.ingest.fieldMap }, maxFutureMs: config.ingest.maxFutureSeconds * 1000 });
  return (format, records, observedTimeMs) => ingestor.parse(format, records, observedTimeMs);
}

function formatProgress(p: ReplayProgress): string {
  const at = p.eventTimeMs > 0 ? new Date(p.eventTimeMs).toISOString().replace('.000Z', 'Z') : '-';
  return `backtest: ${p.events.toLocaleString('en-US')} events (${Math.round(p.eventsPerSecond).toLocaleString('en-US')}/s), event time ${at}, ${p.anomalies} anomalies, ${p.deadLetters} dead letters`;
}

/** Writes one JSON object per line. */
async function writeNdjson(path: string, records: readonly unknown[]): Promise<void> {
  const out = createWriteStream(path);
  for (const record of records) {
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Runs the backtest command; resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { out: { type: 'string', short: 'o' }, 'incidents-out': { type: 'string' }, format: { type: 'string', short: 'f' }, config: { type: 'string', short: 'c' }, quiet: { type: 'boolean', short: 'q' } }, USAGE);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) throw createError('CLI_USAGE', `no input files\n${USAGE}`);
  if (!values.out) throw createError('CLI_USAGE', `--out is required\n${USAGE}`);
  if (values.format !== undefined && !isKnownFormat(values.format)) throw createError('CLI_USAGE', `unknown --format '${values.format}'\n${USAGE}`);
  const config = loadConfig({ file: values.config });
  const tty = process.stderr.isTTY;
  const incidentsOut = values['incidents-out'];
  const correlator = createIncidentCorrelator(config.incidents);
  const result = await runBacktest({
    onAnomaly: (anomaly, change) => correlator.observe(anomaly, change),
    openSources: (storeConfig) => positionals.map((file) => createFileSource(file, { format: values.format, maxLineBytes: storeConfig.ingest.maxLineBytes })),
    parse: createRecordParser(config),
    config,
    onProgress: values.quiet ? undefined : (p) => process.stderr.write(tty ? `\r${formatProgress(p)}\u001b[K` : `${formatProgress(p)}\n`),
  });
  if (tty && !values.quiet) process.stderr.write('\n');

  const out = createWriteStream(values.out);
  for (const anomaly of result.anomalies) {
    if (!out.write(`${JSON.stringify(anomaly)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');

  if (result.lastEventMs > 0) correlator.finish(result.lastEventMs);
  const incidents = correlator.all();
  if (incidentsOut) await writeNdjson(incidentsOut, incidents);
  const pages = incidents.filter((i) => i.notify).length;

  const bySeverity = new Map<string, number>();
  const byDetector = new Map<string, number>();
  for (const a of result.anomalies) {
    bySeverity.set(a.severity, (bySeverity.get(a.severity) ?? 0) + 1);
    byDetector.set(a.detector, (byDetector.get(a.detector) ?? 0) + 1);
  }
  const list = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const span = result.events > 0 ? `${new Date(result.firstEventMs).toISOString()} … ${new Date(result.lastEventMs).toISOString()}` : 'no events';
  process.stdout.write(
    [
      `backtest: ${result.events} events from ${positionals.length} file(s), event time ${span}`,
      `  throughput: ${Math.round(result.eventsPerSecond)} events/s over ${result.wallSeconds.toFixed(1)} s`,
      `  dead letters: ${result.deadLetters}${result.deadLetters > 0 ? ` (${Object.entries(result.deadLetterReasons).slice(0, 5).map(([r, n]) => `${r} ${n}`).join(', ')})` : ''}`,
      ...(result.lateEvents > 0 ? [`  late events (after their window was evaluated): ${result.lateEvents}`] : []),
      `  anomalies: ${result.anomalies.length} (by detector: ${list(byDetector)}; by severity: ${list(bySeverity)})`,
      `  incidents: ${incidents.length} (${pages} paging)`,
      `  written to ${values.out}${incidentsOut ? ` and ${incidentsOut}` : ''}`,
      '',
    ].join('\n'),
  );
  return 0;
}
