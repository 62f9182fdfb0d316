// `ztwatch access`: access history from the store (who accessed what, when, with which decision and
// why), as a table, CSV or NDJSON on stdout. Every run is written to the audit log as `cli:<user>`.
import { hostname, userInfo } from 'node:os';
import type { Writable } from 'node:stream';
import { DECISIONS, type Decision } from '../../core/event.ts';
import { createError } from '../../core/errors.ts';
import type { Store } from '../../store/client.ts';
import { ACCESS_COLUMNS, countAccess, iterateAccess, type AccessFilters, type AccessRow } from '../../store/access-queries.ts';
import { insertAuditRecord } from '../../store/audit-queries.ts';
import { toAccessItem, toCsvField } from '../../api/access.ts';
import { parseCommandArgs } from '../args.ts';
import { runWithLocalStore, type CommandIo } from '../local-store.ts';

const USAGE = `usage: ztwatch access [filters] [--format table|csv|ndjson] [--limit N]

Filters (all optional, combined with AND):
  --identity ID            exact source identity (SPIFFE ID, user, e-mail)
  --identity-prefix TEXT   source identity starting with TEXT
  --service NAME           destination service
  --namespace NAME         destination namespace
  --decision D             allow | deny | error | unknown
  --method M               request method
  --path-prefix TEXT       request path starting with TEXT
  --status CODE            status code
  --from TIME              start (ISO-8601, YYYY-MM-DD, or relative: 30d, 12h, 15m)
  --to TIME                end, exclusive (same forms); default now
Output:
  --format F               table (default), csv or ndjson
  --limit N                rows at most (default 100 for table, all for csv/ndjson)
  --order O                desc (newest first, default for table) or asc (default for csv/ndjson)
  --raw                    include the original line
  --count                  print only the number of matching rows

Reads the store configured by ztwatch.yaml / CLICKHOUSE_URL / ZTWATCH_DATA_DIR. With the embedded
store, stop the running ztwatch first (one process per data directory) or query the API instead.`;


/** The audit-log actor of a command-line user: `cli:<os user>`. */
export function readCliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

const RELATIVE = /^(\d+)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of an absolute or relative (`30d`) time; throws ZTW_CLI_USAGE. */
export function parseCliTime(value: string, flag: string, nowMs: number): number {
  const relative = RELATIVE.exec(value);
  if (relative) return nowMs - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS];
  const ms = Date.parse(/^\d{4}-\d\d-\d\d$/.test(value) ? `${value}T00:00:00Z` : value);
  if (!Number.isFinite(ms)) throw createError('CLI_USAGE', `${flag} ${value}: not a time (ISO-8601, YYYY-MM-DD, or 30d / 12h / 15m)`);
  return ms;
}

/** Writes `text`, waiting when stdout is full (backpressure for months of export). */
async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

function cell(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

function formatTableRow(row: AccessRow): string {
  const item = toAccessItem(row);
  return [
    cell(item.time, 24),
    cell(item.src_identity || '-', 48),
    cell(item.method || '-', 7),
    cell(item.dst_service || '-', 20),
    cell(item.path || '-', 40),
    cell(String(item.status), 6),
    cell(item.decision, 8),
    item.decision_reason || '-',
  ].join(' ');
}

/** Runs `ztwatch access` against `store`; returns the exit code. */
export async function runAccess(args: string[], io: CommandIo, store: Store): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    {
      identity: { type: 'string' },
      'identity-prefix': { type: 'string' },
      service: { type: 'string' },
      namespace: { type: 'string' },
      decision: { type: 'string' },
      method: { type: 'string' },
      'path-prefix': { type: 'string' },
      status: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string' },
      limit: { type: 'string' },
      order: { type: 'string' },
      raw: { type: 'boolean' },
      count: { type: 'boolean' },
    },
    USAGE,
  );
  if (values.help) {
    await write(io.stdout, `${USAGE}\n`);
    return 0;
  }
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'csv' && format !== 'ndjson') throw createError('CLI_USAGE', `--format ${format}: use table, csv or ndjson\n${USAGE}`);
  if (values.decision !== undefined && !(DECISIONS as readonly string[]).includes(values.decision)) {
    throw createError('CLI_USAGE', `--decision ${values.decision}: use ${DECISIONS.join(', ')}`);
  }
  const order = values.order ?? (format === 'table' ? 'desc' : 'asc');
  if (order !== 'asc' && order !== 'desc') throw createError('CLI_USAGE', `--order ${order}: use asc or desc`);
  const parseCount = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text)) throw createError('CLI_USAGE', `${flag} ${text}: not a whole number`);
    return Number(text);
  };
  const limit = parseCount(values.limit, '--limit') ?? (format === 'table' ? 100 : undefined);
  const now = Date.now();
  const filters: AccessFilters = {
    identity: values.identity,
    identityPrefix: values['identity-prefix'],
    service: values.service,
    namespace: values.namespace,
    decision: values.decision as Decision | undefined,
    method: values.method,
    pathPrefix: values['path-prefix'],
    status: parseCount(values.status, '--status'),
    fromMs: values.from === undefined ? undefined : parseCliTime(values.from, '--from', now),
    toMs: values.to === undefined ? undefined : parseCliTime(values.to, '--to', now),
  };

  const audit = async (rows: number, status: number) =>
    insertAuditRecord(store, {
      timeMs: Date.now(),
      actor: readCliActor(),
      role: 'cli',
      action: format === 'table' || values.count ? 'access.query' : 'access.export',
      filters: Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)),
      rows,
      status,
      remoteAddr: hostname(),
    });

  let rows = 0;
  try {
    if (values.count) {
      const n = await countAccess(store, filters);
      await audit(0, 200);
      await write(io.stdout, `${n}\n`);
      return 0;
    }
    const includeRaw = values.raw ?? false;
    const columns: readonly string[] = includeRaw ? [...ACCESS_COLUMNS, 'raw'] : ACCESS_COLUMNS;
    if (format === 'csv') await write(io.stdout, `${columns.join(',')}\r\n`);
    if (format === 'table') {
      await write(io.stdout, `${cell('TIME', 24)} ${cell('IDENTITY', 48)} ${cell('METHOD', 7)} ${cell('SERVICE', 20)} ${cell('PATH', 40)} ${cell('STATUS', 6)} ${cell('DECISION', 8)} REASON\n`);
    }
    for await (const page of iterateAccess(store, filters, { order, includeRaw, maxRows: limit })) {
      let text = '';
      for (const row of page) {
        if (format === 'table') text += `${formatTableRow(row)}\n`;
        else if (format === 'ndjson') text += `${JSON.stringify(toAccessItem(row))}\n`;
        else {
          const item = toAccessItem(row) as unknown as Record<string, unknown>;
          text += `${columns.map((c) => toCsvField(item[c])).join(',')}\r\n`;
        }
      }
      rows += page.length;
      await write(io.stdout, text);
    }
    await audit(rows, 200);
    if (format === 'table') await write(io.stderr, `${rows} row(s)${limit !== undefined && rows === limit ? ` (limit ${limit}; --limit for more)` : ''}\n`);
    return 0;
  } catch (err) {
    await audit(rows, 500).catch(() => undefined);
    throw err;
  }
}

/** `ztwatch access …` */
export function run(args: string[]): Promise<number> {
  return runWithLocalStore(args, USAGE, (io, store) => runAccess(args, io, store));
}
