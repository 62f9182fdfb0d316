// What Grafana does to a panel query before the database sees it, so tests can run the exact SQL
// and PromQL the dashboards send. ClickHouse panels go through three steps, in the order Grafana
// applies them: the ClickHouse plugin's `$__conditionalAll(...)` (frontend), template variables
// (Grafana's templateSrv with the plugin's default formatter), then the plugin's backend macros
// (`$__timeFilter(col)`, `$__timeInterval(col)`, …, grafana/clickhouse-datasource pkg/macros, parsed
// the way grafana/sqlds parses macro arguments). Pure functions; bad input is a result, not a throw.

/** One selected value, several (multi-value variables), or `ALL_VALUE` for "All". */
export type VariableValue = string | readonly string[];

/** Grafana's marker for a variable set to "All". */
export const ALL_VALUE = '$__all';

/** Template variable state: value, plus the custom "All" value when the variable defines one. */
export interface VariableState {
  readonly value: VariableValue;
  /** The variable's `allValue`; used verbatim (unformatted) when the value is "All". */
  readonly allValue?: string;
}

/** The time range and interval Grafana would send with a panel query. */
export interface QueryContext {
  /** Dashboard time range start, Unix milliseconds. */
  readonly fromMs: number;
  /** Dashboard time range end, Unix milliseconds. */
  readonly toMs: number;
  /** The panel's computed interval (`$__interval`), milliseconds. */
  readonly intervalMs: number;
  readonly variables?: Readonly<Record<string, VariableState>>;
}

/** An expanded query, or why it could not be expanded (unknown macro, unbalanced brackets…). */
export type ExpandResult = { ok: true; query: string } | { ok: false; reason: string };

// Grafana's variable syntax: $name, [[name]] / [[name:format]], ${name} / ${name.path} / ${name:format}.
const VARIABLE_PATTERN = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

/** Expands a ClickHouse panel query exactly as Grafana + the ClickHouse plugin would. */
export function expandClickHouseQuery(sql: string, ctx: QueryContext): ExpandResult {
  const variables = ctx.variables ?? {};
  const conditional = applyConditionalAll(sql, variables);
  if (!conditional.ok) return conditional;
  const replaced = replaceVariables(conditional.query, variables, formatClickHouseDefault);
  if (!replaced.ok) return replaced;
  return expandClickHouseMacros(replaced.query, ctx);
}

/** Expands a PromQL expression as Grafana's Prometheus datasource would. */
export function expandPromQuery(expr: string, ctx: QueryContext): ExpandResult {
  const rangeSeconds = Math.max(1, Math.floor((ctx.toMs - ctx.fromMs) / 1000));
  const intervalSeconds = Math.max(1, Math.floor(ctx.intervalMs / 1000));
  const builtins: Record<string, string> = {
    // Grafana: max($__interval + scrape interval, 4 × scrape interval); with the provisioned 15 s
    // scrape interval that is at least 1m.
    __rate_interval: `${Math.max(intervalSeconds + 15, 60)}s`,
    __interval: `${intervalSeconds}s`,
    __interval_ms: String(intervalSeconds * 1000),
    __range: `${rangeSeconds}s`,
    __range_s: String(rangeSeconds),
    __range_ms: String(rangeSeconds * 1000),
  };
  const variables: Record<string, VariableState> = { ...ctx.variables };
  for (const [name, value] of Object.entries(builtins)) variables[name] = { value };
  const replaced = replaceVariables(expr, variables, formatPromDefault);
  if (!replaced.ok) return replaced;
  const leftover = /\$\{?__\w+/.exec(replaced.query);
  return leftover ? { ok: false, reason: `unknown Grafana variable ${leftover[0]}` } : replaced;
}

/**
 * The ClickHouse plugin's `$__conditionalAll(condition, $var)`: the condition is kept, or becomes
 * `1=1` when the variable is empty or "All". Ported from the plugin's applyConditionalAll (last
 * occurrence first, arguments split on top-level commas, replaced verbatim).
 */
export function applyConditionalAll(sql: string, variables: Readonly<Record<string, VariableState>>): ExpandResult {
  const macro = '$__conditionalAll(';
  let query = sql;
  let index = query.lastIndexOf(macro);
  while (index !== -1) {
    const args = readConditionalArgs(query, index + macro.length - 1);
    if (args === undefined || args.length !== 2) return { ok: false, reason: `$__conditionalAll needs 2 arguments at offset ${index}` };
    const [condition, variable] = args as [string, string];
    const name = /(?<=\$\{)\w+(?=\})|(?<=\$)\w+/.exec(variable.trim())?.[0];
    let phrase = condition;
    const state = name === undefined ? undefined : variables[name];
    // An undefined variable keeps the condition, as in the plugin (its value is undefined, not '').
    if (state !== undefined) {
      const value = Array.isArray(state.value) ? state.value.join(',') : String(state.value);
      if (value === '' || value === ALL_VALUE) phrase = '1=1';
    }
    query = query.replace(`${macro}${condition},${variable})`, () => phrase);
    index = query.lastIndexOf(macro);
  }
  return { ok: true, query };
}

/** Top-level comma-separated arguments of the bracket at `openIndex`, or undefined if unclosed. */
function readConditionalArgs(query: string, openIndex: number): string[] | undefined {
  const args: string[] = [];
  let depth = 0;
  let start = openIndex + 1;
  for (let i = openIndex; i < query.length; i++) {
    const ch = query[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 1) {
      args.push(query.slice(start, i));
      start = i + 1;
    }
    if (depth === 0) {
      args.push(query.slice(start, i));
      return args;
    }
  }
  return undefined;
}

type Formatter = (value: VariableValue) => string;

/** The ClickHouse plugin's default formatter: lists become `'a','b'`, single values stay raw. */
function formatClickHouseDefault(value: VariableValue): string {
  return typeof value === 'string' ? value : `'${value.join("','")}'`;
}

/** The Prometheus datasource's default formatter: regex-escaped, lists become `(a|b)`. */
function formatPromDefault(value: VariableValue): string {
  if (typeof value === 'string') return escapePromRegex(value);
  return value.length === 1 ? escapePromRegex(value[0] as string) : `(${value.map(escapePromRegex).join('|')})`;
}

function escapePromRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|{}[\]]/g, '\\$&');
}

const SQL_ESCAPES: Readonly<Record<string, string>> = { "'": "''", '"': '\\"' };

/** Grafana's named formats (`${var:format}`) that ztwatch dashboards may use. */
const FORMATS: Readonly<Record<string, Formatter>> = {
  raw: (v) => (typeof v === 'string' ? v : v.join(',')),
  csv: (v) => (typeof v === 'string' ? v : v.join(',')),
  sqlstring: (v) => (typeof v === 'string' ? [v] : v).map((s) => `'${s.replace(/['"]/g, (m) => SQL_ESCAPES[m] ?? '')}'`).join(','),
  singlequote: (v) => (typeof v === 'string' ? [v] : v).map((s) => `'${s.replace(/'/g, "\\'")}'`).join(','),
  doublequote: (v) => (typeof v === 'string' ? [v] : v).map((s) => `"${s.replace(/"/g, '\\"')}"`).join(','),
  pipe: (v) => (typeof v === 'string' ? v : v.join('|')),
  regex: (v) => (typeof v === 'string' ? escapePromRegex(v) : `(${v.map(escapePromRegex).join('|')})`),
};

/** Grafana's templateSrv.replace: defined variables are substituted, anything else is left as is. */
export function replaceVariables(text: string, variables: Readonly<Record<string, VariableState>>, formatDefault: Formatter): ExpandResult {
  let failure: string | undefined;
  const query = text.replace(VARIABLE_PATTERN, (match, dollar?: string, bracket?: string, bracketFormat?: string, braced?: string, fieldPath?: string, bracedFormat?: string) => {
    const name = dollar ?? bracket ?? braced ?? '';
    const state = variables[name];
    if (state === undefined) return match;
    if (fieldPath !== undefined) {
      failure = `field path in ${match} is not supported`;
      return match;
    }
    const isAll = state.value === ALL_VALUE || (Array.isArray(state.value) && state.value[0] === ALL_VALUE);
    // Grafana inserts a custom "All" value verbatim, without formatting.
    if (isAll) {
      if (state.allValue !== undefined) return state.allValue;
      failure = `variable ${name} is "All" outside $__conditionalAll and has no allValue`;
      return match;
    }
    const formatName = bracketFormat ?? bracedFormat;
    const formatter = formatName === undefined ? formatDefault : FORMATS[formatName];
    if (formatter === undefined) {
      failure = `unsupported variable format ${formatName ?? ''} in ${match}`;
      return match;
    }
    return formatter(state.value);
  });
  return failure === undefined ? { ok: true, query } : { ok: false, reason: failure };
}

type Macro = (args: readonly string[] | undefined, ctx: QueryContext) => string | { error: string };

const toDateTime = (ms: number): string => `toDateTime(${Math.floor(ms / 1000)})`;
const toDateTime64 = (ms: number): string => `fromUnixTimestamp64Milli(${Math.floor(ms)})`;
const toDate = (ms: number): string => `toDate('${new Date(ms).toISOString().slice(0, 10)}')`;
const intervalSeconds = (ctx: QueryContext): number => Math.floor(Math.max(ctx.intervalMs / 1000, 1));

function oneArg(name: string, args: readonly string[] | undefined, render: (column: string) => string): string | { error: string } {
  if (args?.length !== 1) return { error: `$__${name} expects 1 argument, received ${args?.length ?? 0}` };
  return render(args[0] as string);
}

/** The ClickHouse plugin's backend macros (pkg/macros/macros.go), same output text. */
const CLICKHOUSE_MACROS: Readonly<Record<string, Macro>> = {
  fromTime: (_args, ctx) => toDateTime(ctx.fromMs),
  toTime: (_args, ctx) => toDateTime(ctx.toMs),
  fromTime_ms: (_args, ctx) => toDateTime64(ctx.fromMs),
  toTime_ms: (_args, ctx) => toDateTime64(ctx.toMs),
  timeFilter: (args, ctx) => oneArg('timeFilter', args, (c) => `${c} >= ${toDateTime(ctx.fromMs)} AND ${c} <= ${toDateTime(ctx.toMs)}`),
  timeFilter_ms: (args, ctx) => oneArg('timeFilter_ms', args, (c) => `${c} >= ${toDateTime64(ctx.fromMs)} AND ${c} <= ${toDateTime64(ctx.toMs)}`),
  dateFilter: (args, ctx) => oneArg('dateFilter', args, (c) => `${c} >= ${toDate(ctx.fromMs)} AND ${c} <= ${toDate(ctx.toMs)}`),
  timeInterval: (args, ctx) => oneArg('timeInterval', args, (c) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${intervalSeconds(ctx)} second)`),
  timeInterval_ms: (args, ctx) =>
    oneArg('timeInterval_ms', args, (c) => `toStartOfInterval(toDateTime64(${c}, 3), INTERVAL ${Math.floor(Math.max(ctx.intervalMs, 1))} millisecond)`),
  interval_s: (_args, ctx) => String(intervalSeconds(ctx)),
};

/**
 * Expands the plugin's backend macros the way grafana/sqlds does: longest name first; each
 * `$__name` optionally followed by a bracketed argument list (nested brackets allowed, arguments
 * trimmed); every textual occurrence of a match is replaced. Unknown `$__` macros are an error,
 * so a typo fails a test instead of reaching ClickHouse.
 */
export function expandClickHouseMacros(sql: string, ctx: QueryContext): ExpandResult {
  let query = sql;
  const names = Object.keys(CLICKHOUSE_MACROS).sort((a, b) => b.length - a.length);
  for (const name of names) {
    const macro = CLICKHOUSE_MACROS[name] as Macro;
    const pattern = new RegExp(`\\$__${name}\\b`, 'g');
    const matches: Array<{ full: string; args: string[] | undefined }> = [];
    for (const m of query.matchAll(pattern)) {
      const end = (m.index ?? 0) + m[0].length;
      const parsed = parseMacroArgs(query.slice(end));
      if (parsed === undefined) return { ok: false, reason: `$__${name}: missing close bracket` };
      matches.push({ full: query.slice(m.index ?? 0, end + parsed.length), args: parsed.args });
    }
    for (const match of matches) {
      const out = macro(match.args, ctx);
      if (typeof out !== 'string') return { ok: false, reason: out.error };
      query = query.split(match.full).join(out);
    }
  }
  const leftover = /\$__\w+/.exec(query);
  return leftover ? { ok: false, reason: `unknown macro ${leftover[0]}` } : { ok: true, query };
}

/** sqlds parseArgs: a bracketed list at the start of `rest`, or no arguments at all. */
function parseMacroArgs(rest: string): { args: string[] | undefined; length: number } | undefined {
  if (!rest.startsWith('(')) return { args: undefined, length: 0 };
  const args: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i] as string;
    if (ch === '(') {
      depth++;
      if (depth === 1) continue;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        args.push(current.trim());
        return { args, length: i + 1 };
      }
    } else if (ch === ',' && depth === 1) {
      args.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  return undefined;
}
