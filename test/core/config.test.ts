import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, ENV_KEYS, MAX_RETENTION_DAYS, buildConfig, loadConfig } from '../../core/config.ts';
import { ZtwError } from '../../core/errors.ts';

/** Every dotted key of an object schema, descending into nested objects. */
function listKeys(schema: TSchema, prefix = ''): string[] {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props) return [];
  return Object.entries(props).flatMap(([name, child]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    const nested = (child as { type?: string; properties?: unknown }).type === 'object' && (child as { properties?: unknown }).properties;
    return nested ? listKeys(child, key) : [key];
  });
}

describe('config', () => {
  it('applies defaults and freezes the result', () => {
    const config = buildConfig({});
    expect(config.clickhouse.retentionDays).toBe(400);
    expect(config.kafka.brokers).toEqual([]);
    expect(Object.isFrozen(config.clickhouse)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow();
  });

  it('reads a YAML file, then environment overrides, then explicit overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztw-config-'));
    const file = join(dir, 'ztwatch.yaml');
    writeFileSync(file, 'http:\n  port: 9000\nclickhouse:\n  retentionDays: 30\n');
    const config = loadConfig({ file, env: { KAFKA_BROKERS: 'a:9092, b:9092', ZTWATCH_HTTP_PORT: '9100' }, overrides: { clickhouse: { database: 'x' } } });
    expect(config.http.port).toBe(9100);
    expect(config.clickhouse.retentionDays).toBe(30);
    expect(config.clickhouse.database).toBe('x');
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9092']);
  });

  it('rejects invalid values with ZTW_CONFIG_INVALID listing the path', () => {
    let error: unknown;
    try {
      buildConfig({ http: { port: 'eighty' }, unknownKey: 1 });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ZtwError);
    expect((error as ZtwError).code).toBe('ZTW_CONFIG_INVALID');
    expect((error as ZtwError).message).toContain('/http/port');
  });

  it('rejects a database name that is not an identifier (it is interpolated into DDL)', () => {
    expect(() => buildConfig({ clickhouse: { database: 'x; DROP TABLE y' } })).toThrow(/ZTW|invalid/i);
  });

  it('rejects retention past the DateTime TTL range (it would wrap and drop every row)', () => {
    expect(() => buildConfig({ clickhouse: { retentionDays: 36_500 } })).toThrow(/retentionDays/);
    expect(buildConfig({ clickhouse: { retentionDays: MAX_RETENTION_DAYS } }).clickhouse.retentionDays).toBe(MAX_RETENTION_DAYS);
  });

  it('reports an unreadable file with ZTW_CONFIG_UNREADABLE', () => {
    expect(() => loadConfig({ file: '/nonexistent/ztwatch.yaml', env: {} })).toThrow(expect.objectContaining({ code: 'ZTW_CONFIG_UNREADABLE' }));
  });

  it('documents every config key and environment variable in the README', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const keys = listKeys(ConfigSchema);
    expect(keys.length).toBeGreaterThan(20);
    const missing = [...keys, ...Object.keys(ENV_KEYS)].filter((k) => !readme.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
