// Soak benchmark (DESIGN §10, "collector and sink RSS flat over a 10-minute soak"): Envoy lines
// posted over loopback at a steady half of the path's maximum rate for ZTWATCH_BENCH_SOAK_SECONDS
// (default 600), printing every ZTWATCH_BENCH_SOAK_SAMPLE_SECONDS (default 30) the RSS of the
// collector and the sink, the rows stored and the backlog, then each process's RSS at the start and
// the end and its slope (least squares, MB per minute) after the first minute of warm-up.
//
// ZTWATCH_BENCH_SOAK_PATH picks the path: `kafka` (default: `ztwatch collector` process → Kafka
// 4.1.1 on this machine → sink process, as bench/kafka.ts runs them) or `embedded` (one
// `ztwatch run --roles collector,sink` process, memory bus, where an answer means stored).
// The rate is ZTWATCH_BENCH_SOAK_RATE events/s, or half of what a burst of BURST_EVENTS measures first.
// Bounded: the duration, at most STEADY_MAX_IN_FLIGHT requests in flight (bench/kafka.ts), and a
// deadline on the final drain. Not in the default `npm run bench` list: `npm run bench -- soak`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { linearRegression } from 'simple-statistics';
import { ensureKafka, type KafkaBroker } from '../test/helpers/kafka.ts';
import { envoyLine } from './envoy-line.ts';
import {
  createPipelineConfig,
  createPoster,
  fmt,
  load,
  measureMaxRate,
  postSteadily,
  readIntEnv,
  readRssBytes,
  startKafkaPipeline,
  startRole,
  waitUntil,
  writeRoleConfig,
} from './kafka.ts';

const BURST_EVENTS = 100_000;
const LINES_PER_REQUEST = 1000;
/** Samples before this many seconds are warm-up: the slope is fitted to the later ones. */
const WARM_UP_SECONDS = 60;
const DRAIN_SECONDS = 120;
const MB = 2 ** 20;

interface Sample {
  readonly seconds: number;
  readonly rssBytes: Readonly<Record<string, number>>;
  readonly stored: number;
  readonly accepted: number;
}

/** One path under soak: its processes, how to post, how much it stored, and how to stop it. */
interface SoakTarget {
  readonly label: string;
  readonly pids: Readonly<Record<string, number>>;
  readonly poster: ReturnType<typeof createPoster>;
  stored(): Promise<number>;
  stop(): Promise<void>;
}

async function startKafkaTarget(broker: KafkaBroker, dir: string): Promise<SoakTarget> {
  const pipeline = await startKafkaPipeline(broker, dir);
  return {
    label: `ztwatch collector process → Kafka 4.1.1 on this machine (${pipeline.config.kafka.partitions} partitions) → sink process (chain included) → embedded ClickHouse on disk`,
    pids: { collector: pipeline.collector.pid, sink: pipeline.sink.pid },
    poster: pipeline.poster,
    stored: async () => (await pipeline.sink.status()).stored,
    async stop() {
      await pipeline.stop();
    },
  };
}

async function startEmbeddedTarget(dir: string): Promise<SoakTarget> {
  // The pipeline's config without brokers: the memory bus.
  const config = createPipelineConfig([], dir);
  const token = randomBytes(24).toString('hex');
  const role = await startRole(['run', '--roles', 'collector,sink', '--config', writeRoleConfig(config, dir, 'run', token)]);
  const poster = createPoster(`${role.url}/v1/ingest/envoy`, token);
  let accepted = 0;
  return {
    label: 'one `ztwatch run --roles collector,sink` process (memory bus, an answer means stored) → embedded ClickHouse on disk',
    pids: { 'collector+sink': role.pid },
    poster: {
      get refusals() {
        return poster.refusals;
      },
      async post(body) {
        const n = await poster.post(body);
        accepted += n;
        return n;
      },
    },
    stored: async () => accepted,
    stop: () => role.stop(),
  };
}

/** Least-squares slope of RSS against time, in MB per minute. */
function slopeMbPerMinute(samples: readonly Sample[], name: string): number {
  if (samples.length < 2) return NaN;
  return linearRegression(samples.map((s) => [s.seconds / 60, (s.rssBytes[name] ?? NaN) / MB])).m;
}

/** Runs the soak and prints RSS samples and slopes. */
export async function runSoakBench(): Promise<void> {
  const seconds = readIntEnv('ZTWATCH_BENCH_SOAK_SECONDS', 600, 30, 7200);
  const sampleSeconds = readIntEnv('ZTWATCH_BENCH_SOAK_SAMPLE_SECONDS', 30, 5, 600);
  const path = process.env.ZTWATCH_BENCH_SOAK_PATH ?? 'kafka';
  if (path !== 'kafka' && path !== 'embedded') throw new Error(`ZTWATCH_BENCH_SOAK_PATH=${path}: kafka or embedded`);
  const dir = mkdtempSync(join(tmpdir(), 'ztwatch-bench-soak-'));
  const broker = path === 'kafka' ? await ensureKafka() : undefined;
  try {
    const target = broker ? await startKafkaTarget(broker, dir) : await startEmbeddedTarget(dir);
    let accepted = 0;
    const samples: Sample[] = [];
    let rate: number;
    let rateNote: string;
    try {
      if (process.env.ZTWATCH_BENCH_SOAK_RATE !== undefined) {
        rate = readIntEnv('ZTWATCH_BENCH_SOAK_RATE', 1000, 100, 1_000_000);
        rateNote = 'ZTWATCH_BENCH_SOAK_RATE';
      } else {
        const nowMs = Date.now();
        const bodies: string[] = [];
        for (let i = 0; i < BURST_EVENTS; i += LINES_PER_REQUEST) {
          bodies.push(Array.from({ length: LINES_PER_REQUEST }, (_, k) => envoyLine(i + k, nowMs)).join('\n'));
        }
        const burst = await measureMaxRate({ bodies, clients: 16, poster: target.poster, stored: target.stored, pids: target.pids });
        accepted += burst.accepted;
        rate = Math.max(500, Math.floor(burst.rate / 2));
        rateNote = `half of ${fmt(burst.rate)} events/s measured by a burst of ${fmt(BURST_EVENTS)} events first (load ${load()})`;
      }
      console.log(`${target.label}; ${fmt(rate)} events/s (${rateNote}) for ${seconds} s, sampled every ${sampleSeconds} s`);

      const storedBefore = await target.stored();
      const acceptedBefore = accepted;
      let steadyAccepted = 0;
      const poster = {
        get refusals() {
          return target.poster.refusals;
        },
        async post(body: string) {
          const n = await target.poster.post(body);
          steadyAccepted += n;
          return n;
        },
      };
      const sample = async (elapsed: number) => {
        const rssBytes: Record<string, number> = {};
        for (const [name, pid] of Object.entries(target.pids)) rssBytes[name] = readRssBytes(pid);
        const s: Sample = { seconds: elapsed, rssBytes, stored: (await target.stored()) - storedBefore, accepted: steadyAccepted };
        samples.push(s);
        const rss = Object.entries(rssBytes).map(([name, bytes]) => `${name} ${(bytes / MB).toFixed(0).padStart(5)} MB`).join('  ');
        console.log(`  t=${String(Math.round(elapsed)).padStart(5)} s  ${rss}  stored ${fmt(s.stored).padStart(11)}  backlog ${fmt(s.accepted - s.stored).padStart(8)}  load ${load()}`);
      };
      await sample(0);
      let nextSample = sampleSeconds;
      const steady = await postSteadily({
        rate,
        seconds,
        poster,
        firstLine: BURST_EVENTS,
        onTick: async (elapsed) => {
          if (elapsed < nextSample) return;
          nextSample += sampleSeconds;
          await sample(elapsed);
        },
      });
      accepted = acceptedBefore + steady.accepted;
      const drained = await waitUntil(async () => (await target.stored()) - storedBefore >= steady.accepted, DRAIN_SECONDS);
      await sample(seconds);
      const warm = samples.filter((s) => s.seconds >= WARM_UP_SECONDS);
      const first = samples[0] as Sample;
      const last = samples[samples.length - 1] as Sample;
      for (const name of Object.keys(target.pids)) {
        const peak = Math.max(...samples.map((s) => s.rssBytes[name] ?? 0));
        console.log(
          `  ${name.padEnd(14)} RSS ${((first.rssBytes[name] ?? NaN) / MB).toFixed(0)} MB at the start, ${((last.rssBytes[name] ?? NaN) / MB).toFixed(0)} MB at the end, peak ${(peak / MB).toFixed(0)} MB; slope ${warm.length >= 2 ? `${slopeMbPerMinute(warm, name).toFixed(2)} MB/min` : 'n/a'} after ${WARM_UP_SECONDS} s (${slopeMbPerMinute(samples, name).toFixed(2)} MB/min over the whole run)`,
        );
      }
      console.log(
        `  events         ${fmt(steady.accepted)} accepted at a steady rate (${steady.missed} requests missed, ${target.poster.refusals} 429/503 answers), ${drained ? 'all stored' : `NOT all stored within ${DRAIN_SECONDS} s`}; load ${load()} at the end (target: RSS flat)`,
      );
    } finally {
      await target.stop();
    }
  } finally {
    await broker?.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runSoakBench();
