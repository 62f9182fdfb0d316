// The expander must produce what Grafana + the ClickHouse plugin produce; expected strings follow
// the plugin's pkg/macros/macros.go, grafana/sqlds argument parsing, Grafana's variable formats
// and the plugin's $__conditionalAll.
import { describe, expect, it } from 'vitest';
import { ALL_VALUE, applyConditionalAll, expandClickHouseMacros, expandClickHouseQuery, expandPromQuery, replaceVariables } from '../../dashboards/macros.ts';

// 2014-11-12T11:45:26.371Z → 2015-11-12T11:45:26.371Z, interval 20 s.
const CTX = { fromMs: 1415792726371, toMs: 1447328726371, intervalMs: 20_000 };

const expand = (sql: string, ctx = CTX): string => {
  const result = expandClickHouseMacros(sql, ctx);
  if (!result.ok) throw new Error(result.reason);
  return result.query;
};

describe('ClickHouse plugin macros', () => {
  it.each([
    ['$__fromTime', 'toDateTime(1415792726)'],
    ['$__toTime', 'toDateTime(1447328726)'],
    ['$__fromTime_ms', 'fromUnixTimestamp64Milli(1415792726371)'],
    ['$__toTime_ms', 'fromUnixTimestamp64Milli(1447328726371)'],
    ['$__timeFilter(time)', 'time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)'],
    ['$__timeFilter_ms(time)', 'time >= fromUnixTimestamp64Milli(1415792726371) AND time <= fromUnixTimestamp64Milli(1447328726371)'],
    ['$__dateFilter(day)', "day >= toDate('2014-11-12') AND day <= toDate('2015-11-12')"],
    ['$__timeInterval(time)', 'toStartOfInterval(toDateTime(time), INTERVAL 20 second)'],
    ['$__timeInterval_ms(time)', 'toStartOfInterval(toDateTime64(time, 3), INTERVAL 20000 millisecond)'],
    ['$__interval_s', '20'],
  ])('%s → %s', (macro, expected) => {
    expect(expand(macro)).toBe(expected);
  });

  it('expands the longer macro name first and every occurrence of a match', () => {
    expect(expand('SELECT $__timeFilter_ms(t), $__timeFilter(u), $__timeFilter(u)')).toBe(
      'SELECT t >= fromUnixTimestamp64Milli(1415792726371) AND t <= fromUnixTimestamp64Milli(1447328726371), ' +
        'u >= toDateTime(1415792726) AND u <= toDateTime(1447328726), u >= toDateTime(1415792726) AND u <= toDateTime(1447328726)',
    );
  });

  it('parses nested brackets and trims arguments like sqlds', () => {
    expect(expand('$__timeInterval( toDateTime(ts, \'UTC\') )')).toBe("toStartOfInterval(toDateTime(toDateTime(ts, 'UTC')), INTERVAL 20 second)");
  });

  it('uses at least one second for tiny intervals', () => {
    expect(expand('$__interval_s', { ...CTX, intervalMs: 200 })).toBe('1');
  });

  it('reports wrong argument counts, unclosed brackets and unknown macros', () => {
    expect(expandClickHouseMacros('$__timeFilter(a, b)', CTX)).toEqual({ ok: false, reason: '$__timeFilter expects 1 argument, received 2' });
    expect(expandClickHouseMacros('$__timeFilter', CTX)).toEqual({ ok: false, reason: '$__timeFilter expects 1 argument, received 0' });
    expect(expandClickHouseMacros('$__timeFilter(a', CTX).ok).toBe(false);
    expect(expandClickHouseMacros('$__timeFilterz(a)', CTX)).toEqual({ ok: false, reason: 'unknown macro $__timeFilterz' });
  });
});

describe('template variables', () => {
  const vars = { one: { value: 'a' }, many: { value: ['a', "b'c"] }, quoted: { value: 'x"y' } };
  const clickhouseDefault = (v: string | readonly string[]) => (typeof v === 'string' ? v : `'${v.join("','")}'`);

  it.each([
    ['$one', 'a'],
    ['${one}', 'a'],
    ['[[one]]', 'a'],
    ['$many', "'a','b'c'"],
    ['${many:sqlstring}', "'a','b''c'"],
    ['${quoted:sqlstring}', `'x\\"y'`],
    ['${many:singlequote}', "'a','b\\'c'"],
    ['${many:csv}', "a,b'c"],
    ['${many:pipe}', "a|b'c"],
    ['[[many:sqlstring]]', "'a','b''c'"],
    ['$unknown ${unknown:sqlstring}', '$unknown ${unknown:sqlstring}'],
  ])('%s → %s', (text, expected) => {
    expect(replaceVariables(text, vars, clickhouseDefault)).toEqual({ ok: true, query: expected });
  });

  it('inserts a custom all value verbatim and refuses "All" without one', () => {
    expect(replaceVariables('x=~"$v"', { v: { value: [ALL_VALUE], allValue: '.*' } }, clickhouseDefault)).toEqual({ ok: true, query: 'x=~".*"' });
    expect(replaceVariables('$v', { v: { value: ALL_VALUE } }, clickhouseDefault).ok).toBe(false);
  });

  it('refuses formats it does not implement', () => {
    expect(replaceVariables('${one:lucene}', vars, clickhouseDefault).ok).toBe(false);
  });
});

describe('$__conditionalAll', () => {
  const sql = 'WHERE $__conditionalAll(a IN (${v:sqlstring}), $v) AND $__conditionalAll((b IN (${w:sqlstring}) OR c = 1), ${w})';

  it('becomes 1=1 for "All" or an empty value and keeps the condition otherwise', () => {
    expect(applyConditionalAll(sql, { v: { value: [ALL_VALUE] }, w: { value: '' } })).toEqual({ ok: true, query: 'WHERE 1=1 AND 1=1' });
    expect(applyConditionalAll(sql, { v: { value: ['x'] }, w: { value: ['y', 'z'] } })).toEqual({
      ok: true,
      query: 'WHERE a IN (${v:sqlstring}) AND (b IN (${w:sqlstring}) OR c = 1)',
    });
  });

  it('keeps the condition when the variable is not defined', () => {
    expect(applyConditionalAll('$__conditionalAll(a = 1, $nope)', {})).toEqual({ ok: true, query: 'a = 1' });
  });

  it('runs before variables and macros in the full expansion', () => {
    const result = expandClickHouseQuery('SELECT 1 WHERE $__timeFilter(t) AND $__conditionalAll(a IN (${v:sqlstring}), $v)', { ...CTX, variables: { v: { value: ['x'] } } });
    expect(result).toEqual({ ok: true, query: "SELECT 1 WHERE t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND a IN ('x')" });
  });

  it('reports a malformed call', () => {
    expect(applyConditionalAll('$__conditionalAll(a = 1)', {}).ok).toBe(false);
    expect(applyConditionalAll('$__conditionalAll(a = 1, $v', {}).ok).toBe(false);
  });
});

describe('PromQL', () => {
  it('replaces Grafana interval variables and regex-escapes values', () => {
    const ctx = { fromMs: 0, toMs: 3_600_000, intervalMs: 30_000, variables: { job: { value: ['a.b', 'c'] } } };
    expect(expandPromQuery('rate(x{job=~"$job"}[$__rate_interval]) + increase(x[$__range]) + y[$__interval]', ctx)).toEqual({
      ok: true,
      query: 'rate(x{job=~"(a\\.b|c)"}[60s]) + increase(x[3600s]) + y[30s]',
    });
  });

  it('rejects Grafana variables it does not know', () => {
    expect(expandPromQuery('x[$__auto]', { fromMs: 0, toMs: 1000, intervalMs: 1000 }).ok).toBe(false);
  });
});
