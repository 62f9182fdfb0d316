// Detector benchmark: backtest throughput (events/s) of a generated trace of at least a million
// events written to files in real wire formats, replayed through the `ztwatch backtest` path
// (file reading, parsers, embedded store with rollups, detector engine). Printed with the ratio to
// parsing alone in the same run, and the projected time for three million events (DESIGN §6:
// "a few million events in minutes on 2 cores").
// Run alone: `node bin/run-ts.js bench/detectors.ts [hours]` (default 4 hours ≈ 1.2 M events).
import { mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildConfig } from '../core/config.ts';
import { runBacktest } from '../detectors/backtest.ts';
import { createFileSource, createRecordParser } from '../cli/commands/backtest.ts';
import { createScenario } from '../ingest/simulate/index.ts';

/** Writes a generated trace as one file per format; returns the files and the record count. */
async function writeTrace(dir: string, hours: number): Promise<{ files: string[]; records: number }> {
  const start = Date.UTC(2026, 0, 6, 10, 0, 0);
  const durationMs = hours * 3_600_000;
  const scenario = createScenario({ seed: 42, services: 30, startMs: start, durationMs, peakRps: 70 });
  const streams = new Map<string, WriteStream>();
  let records = 0;
  for (let t = start; t < start + durationMs; t += 300_000) {
    const byFormat = new Map<string, string[]>();
    for (const l of scenario.generate(t, t + 300_000)) {
      let list = byFormat.get(l.format);
      if (!list) byFormat.set(l.format, (list = []));
      list.push(l.line);
    }
    for (const [format, lines] of byFormat) {
      let stream = streams.get(format);
      if (!stream) streams.set(format, (stream = createWriteStream(join(dir, `${format}.log`))));
      records += lines.length;
      if (!stream.write(`${lines.join('\n')}\n`)) await once(stream, 'drain');
    }
  }
  for (const s of streams.values()) {
    s.end();
    await once(s, 'finish');
  }
  return { files: [...streams.keys()].map((f) => join(dir, `${f}.log`)), records };
}

/** Runs the benchmark and prints events/s and ratios. */
export async function runDetectorBench(hours = 4): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ztwatch-bench-detectors-'));
  try {
    let started = performance.now();
    const { files, records } = await writeTrace(dir, hours);
    console.log(`trace: ${records.toLocaleString('en-US')} records (${hours} h, 30 services) generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const config = buildConfig({ dataDir: ':memory:' });
    // Baseline: parsing alone, the same records through the same parsers.
    const parse = createRecordParser(config);
    started = performance.now();
    let parsed = 0;
    for (const file of files) {
      const source = createFileSource(file, { maxLineBytes: config.ingest.maxLineBytes });
      for (let chunk = await source.next(); chunk; chunk = await source.next()) {
        for (const group of chunk.groups) parsed += parse(group.format, group.records, Date.now()).events.length;
      }
    }
    const parseSeconds = (performance.now() - started) / 1000;
    const parseRate = parsed / parseSeconds;
    console.log(`parse only: ${Math.round(parseRate).toLocaleString('en-US')} events/s`);

    let lastProgress = 0;
    const result = await runBacktest({
      openSources: (c) => files.map((file) => createFileSource(file, { maxLineBytes: c.ingest.maxLineBytes })),
      parse,
      config,
      storage: ':memory:',
      onProgress: (p) => {
        if (p.wallSeconds - lastProgress >= 10) {
          lastProgress = p.wallSeconds;
          console.log(`  … ${p.events.toLocaleString('en-US')} events, ${Math.round(p.eventsPerSecond).toLocaleString('en-US')}/s`);
        }
      },
    });
    const rate = result.eventsPerSecond;
    console.log(`backtest: ${result.events.toLocaleString('en-US')} events in ${result.wallSeconds.toFixed(1)} s = ${Math.round(rate).toLocaleString('en-US')} events/s, ${result.anomalies.length} anomalies, ${result.deadLetters} dead letters`);
    console.log(`ratio backtest / parse only: ${(rate / parseRate).toFixed(2)}`);
    console.log(`projected for 3,000,000 events: ${(3_000_000 / rate / 60).toFixed(1)} min (target: minutes on 2 cores)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runDetectorBench(Number(process.argv[2] ?? 4));
}
