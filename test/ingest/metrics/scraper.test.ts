import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { NormalizedEvent } from '../../../core/event.ts';
import { createMetricsScraper } from '../../../ingest/metrics/scraper.ts';
import { waitFor } from '../../helpers/wait.ts';

const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const SCRAPE_MS = Date.UTC(2025, 0, 1, 12, 0, 0);

describe('createMetricsScraper', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A real metrics endpoint on loopback answering with `bodies()` in turn (status 500 for `null`). */
  /** Serves `bodies` in turn at any path; `hits()` counts requests, `hits(path)` those for one path. */
  async function serve(bodies: Array<string | null>): Promise<{ url: string; hits: (path?: string) => number }> {
    let hits = 0;
    const byPath = new Map<string, number>();
    server = createServer((req, res) => {
      const body = bodies[Math.min(hits, bodies.length - 1)];
      hits++;
      byPath.set(req.url ?? '', (byPath.get(req.url ?? '') ?? 0) + 1);
      if (body === null || body === undefined) {
        res.statusCode = 500;
        res.end('oops');
        return;
      }
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(body);
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/stats/prometheus`, hits: (path) => (path === undefined ? hits : (byPath.get(path) ?? 0)) };
  }

  /** The fixture with every sample value raised by `by`. */
  const bump = (text: string, by: number): string => text.replace(/^([^#\n].*\s)(\d+)$/gm, (_m, head: string, value: string) => `${head}${Number(value) + by}`);

  it('emits the growth between scrapes of a real endpoint', async () => {
    const fixture = read('istio/ztunnel-tcp-metrics.prom');
    const { url } = await serve([fixture, bump(fixture, 4)]);
    const batches: NormalizedEvent[][] = [];
    const scraper = createMetricsScraper({ targets: [{ url, intervalSeconds: 60 }], emit: async (events) => void batches.push(events), now: () => SCRAPE_MS });
    await scraper.scrapeOnce();
    expect(batches).toEqual([]);
    await scraper.scrapeOnce();
    expect(batches).toHaveLength(1);
    // Five destination-reported opened series, each grown by 4.
    expect(batches[0]?.map((e) => e.count)).toEqual([4, 4, 4, 4, 4]);
    expect(batches[0]?.every((e) => e.time === SCRAPE_MS && e.source === 'mesh_metrics')).toBe(true);
    expect(scraper.stats()).toMatchObject({ scrapes: 2, failures: 0, events: 5 });
    await scraper.close();
  });

  it('keeps the baseline when a scrape or the emit fails, so no growth is lost', async () => {
    const fixture = read('linkerd/proxy-metrics.prom');
    const { url } = await serve([fixture, null, bump(fixture, 2), bump(fixture, 2), bump(fixture, 3)]);
    const errors: string[] = [];
    const counted: number[] = [];
    let failEmit = true;
    const scraper = createMetricsScraper({
      targets: [{ url, intervalSeconds: 60 }],
      emit: async (events) => {
        if (failEmit) throw new Error('bus down');
        counted.push(...events.map((e) => e.count));
      },
      onError: (_url, error) => errors.push(error.message),
    });
    await scraper.scrapeOnce(); // baseline
    await scraper.scrapeOnce(); // HTTP 500
    await scraper.scrapeOnce(); // +2, emit fails
    failEmit = false;
    await scraper.scrapeOnce(); // still +2 from the kept baseline
    await scraper.scrapeOnce(); // +1
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/HTTP 500/);
    expect(errors[1]).toMatch(/bus down/);
    expect(counted).toEqual([...Array<number>(12).fill(2), ...Array<number>(12).fill(1)]);
    expect(scraper.stats()).toMatchObject({ scrapes: 3, failures: 2 });
    await scraper.close();
  });

  it('scrapes on its interval after start() and stops on close()', async () => {
    const fixture = read('istio/requests-total-labelset.prom');
    let n = 0;
    const { url, hits } = await serve(Array.from({ length: 50 }, () => bump(fixture, n++)));
    let emitted = 0;
    const scraper = createMetricsScraper({ targets: [{ url, intervalSeconds: 0.05 }], emit: async (events) => void (emitted += events.length) });
    scraper.start();
    await waitFor(() => emitted >= 2, { what: 'two scrapes on the interval' });
    await scraper.close();
    expect(emitted).toBeGreaterThanOrEqual(2);
    const after = hits('/stats/prometheus');
    // A witness on the same interval scrapes three times: the closed scraper would have scraped meanwhile.
    const witness = createMetricsScraper({ targets: [{ url: url.replace('/stats/prometheus', '/witness'), intervalSeconds: 0.05 }], emit: async () => undefined });
    witness.start();
    await waitFor(() => hits('/witness') >= 3, { what: 'three scrapes by the witness' });
    await witness.close();
    expect(hits('/stats/prometheus')).toBe(after);
  });

  it('reports an unreachable target without throwing', async () => {
    const errors: string[] = [];
    const scraper = createMetricsScraper({
      targets: [{ url: 'http://127.0.0.1:9/metrics', intervalSeconds: 60 }],
      emit: async () => undefined,
      onError: (_url, error) => errors.push((error as Error & { code?: string }).code ?? ''),
      timeoutMs: 2000,
    });
    await scraper.scrapeOnce();
    expect(errors).toEqual(['ZTW_INGEST_SCRAPE_FAILED']);
    expect(scraper.stats().failures).toBe(1);
    await scraper.close();
  });
});
