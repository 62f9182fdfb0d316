// The sink role of the Kafka benchmarks, in a process of its own: wired exactly as `ztwatch sink`
// wires it (store on disk, Kafka bus, sink with its tamper-evidence chain), plus what the
// benchmark reads over the IPC channel of its parent: rows stored, this process's RSS, and the
// freshness of every stored event (time its insert returned minus the collector's receive time,
// `observed_time`) in a fixed histogram of 5 ms bins, so a long soak keeps no per-event samples.
//
// Started by bench/kafka.ts: `node bin/run-ts.js bench/kafka-sink.ts CONFIG.json` with an IPC channel.
// Messages in: {type:'status'} | {type:'reset'} | {type:'stop'}.
// Messages out: {type:'ready'} | {type:'status', stored, rssBytes, freshness} | {type:'stopped', count}.
import { createBus } from '../bus/index.ts';
import { loadConfig } from '../core/config.ts';
import { createMetrics } from '../core/metrics.ts';
import { createStore, type Store } from '../store/client.ts';
import { createSinkWithChain } from '../store/sink-with-chain.ts';

/** Freshness histogram: bin width, and bins (the last holds everything from 60 s up), in milliseconds. */
const BIN_MS = 5;
const BINS = 60_000 / BIN_MS + 1;

/** Freshness quantiles of one phase, in milliseconds. */
export interface FreshnessSummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Event inserts since the last reset: how many, their rows and the time spent in them; and the reads of `sink_state`. */
export interface InsertSummary {
  readonly count: number;
  readonly rows: number;
  readonly milliseconds: number;
  readonly stateReads: number;
  readonly stateReadMilliseconds: number;
}

export type SinkReport =
  | { readonly type: 'ready' }
  | { readonly type: 'status'; readonly stored: number; readonly rssBytes: number; readonly freshness: FreshnessSummary; readonly inserts: InsertSummary }
  | { readonly type: 'stopped'; readonly count: number };

export type SinkCommand = { readonly type: 'status' } | { readonly type: 'reset' } | { readonly type: 'stop' };

function summarize(bins: Uint32Array, maxMs: number): FreshnessSummary {
  let count = 0;
  for (const n of bins) count += n;
  const at = (q: number) => {
    const rank = Math.ceil(q * count);
    let seen = 0;
    for (let i = 0; i < bins.length; i++) {
      seen += bins[i] as number;
      if (seen >= rank && rank > 0) return (i + 1) * BIN_MS;
    }
    return NaN;
  };
  return { count, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: count ? maxMs : NaN };
}

async function main(file: string): Promise<void> {
  const send = (report: SinkReport) => process.send?.(report);
  const config = loadConfig({ file, env: {} });
  const metrics = createMetrics();
  const base = createStore(config);
  await base.migrate();
  const bins = new Uint32Array(BINS);
  let maxMs = 0;
  // Summarized again only after an insert: the benchmark polls status every 50 ms, and walking
  // the bins on each poll would count as the sink's own CPU.
  let summary: FreshnessSummary | undefined;
  let inserts = { count: 0, rows: 0, milliseconds: 0, stateReads: 0, stateReadMilliseconds: 0 };
  // The store as the sink sees it, noting when each event became queryable and each read of sink_state.
  const store: Store = {
    ...base,
    async query<T>(sql: string, params?: Parameters<Store['query']>[1]): Promise<T[]> {
      if (!sql.includes('.sink_state')) return base.query<T>(sql, params);
      const started = performance.now();
      const rows = await base.query<T>(sql, params);
      inserts = { ...inserts, stateReads: inserts.stateReads + 1, stateReadMilliseconds: inserts.stateReadMilliseconds + performance.now() - started };
      return rows;
    },
    async insertEvents(events, dedupToken, json) {
      const started = performance.now();
      await base.insertEvents(events, dedupToken, json);
      inserts = { ...inserts, count: inserts.count + 1, rows: inserts.rows + events.length, milliseconds: inserts.milliseconds + performance.now() - started };
      const now = Date.now();
      summary = undefined;
      for (const e of events) {
        const ms = Math.max(0, now - e.observed_time);
        if (ms > maxMs) maxMs = ms;
        const bin = Math.min(BINS - 1, Math.floor(ms / BIN_MS));
        bins[bin] = (bins[bin] as number) + 1;
      }
    },
  };
  const bus = await createBus(config, metrics);
  let stored = 0;
  const sink = await createSinkWithChain({ bus, store, metrics, config, onStored: (n) => (stored += n) });
  process.on('message', (message: SinkCommand) => {
    if (message.type === 'status') {
      summary ??= summarize(bins, maxMs);
      send({ type: 'status', stored, rssBytes: process.memoryUsage.rss(), freshness: summary, inserts });
    } else if (message.type === 'reset') {
      bins.fill(0);
      maxMs = 0;
      summary = undefined;
      inserts = { count: 0, rows: 0, milliseconds: 0, stateReads: 0, stateReadMilliseconds: 0 };
    } else if (message.type === 'stop') {
      void (async () => {
        await sink.close();
        await bus.close();
        const [row] = await base.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${base.database}.events`);
        await base.close();
        // Exits by itself (not by a signal), so a --cpu-prof profile is written.
        process.send?.({ type: 'stopped', count: Number(row?.n ?? 0) } satisfies SinkReport, () => process.exit(0));
      })();
    }
  });
  send({ type: 'ready' });
}

const file = process.argv[2];
if (!file || !process.send) {
  console.error('usage: node bin/run-ts.js bench/kafka-sink.ts CONFIG.json (started by bench/kafka.ts with an IPC channel)');
  process.exit(2);
}
await main(file);
