// `npm run bench`: every benchmark in one run, each printing ratios against a baseline measured in
// the same run. `npm run bench -- parsers e2e` runs only the named ones; `soak` runs only when named.
import { runParserBench } from './parsers.ts';
import { runE2eBench } from './e2e.ts';
import { runDetectorBench } from './detectors.ts';
import { runComplianceBench } from './compliance.ts';
import { runConsoleBench } from './console.ts';
import { runIngestBench } from './ingest.ts';
import { runPostureBench } from './posture.ts';
import { runKafkaBench } from './kafka.ts';
import { runSoakBench } from './soak.ts';

const BENCHES: Record<string, () => Promise<void>> = {
  parsers: runParserBench,
  ingest: runIngestBench,
  e2e: runE2eBench,
  kafka: runKafkaBench,
  detectors: runDetectorBench,
  compliance: runComplianceBench,
  console: runConsoleBench,
  posture: runPostureBench,
  soak: runSoakBench,
};
/** Run only when named: `npm run bench -- soak` (ten minutes by default). */
const ONLY_WHEN_NAMED = new Set(['soak']);

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
for (const [name, bench] of Object.entries(BENCHES)) {
  if (wanted.length > 0 ? !wanted.includes(name) : ONLY_WHEN_NAMED.has(name)) continue;
  console.log(`\n=== ${name} ===`);
  const started = performance.now();
  await bench();
  console.log(`(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
