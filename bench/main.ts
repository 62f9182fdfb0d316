// `npm run bench`: every benchmark in one run, each printing ratios against a baseline measured in
// the same run. `npm run bench -- parsers e2e` runs only the named ones; `soak` runs only when named.
// Each benchmark's modules are loaded only when it runs, so one benchmark's imports (a test
// harness, a browser driver) cannot stop the others from starting.
const BENCHES: Record<string, () => Promise<void>> = {
  parsers: async () => (await import('./parsers.ts')).runParserBench(),
  ingest: async () => (await import('./ingest.ts')).runIngestBench(),
  e2e: async () => (await import('./e2e.ts')).runE2eBench(),
  kafka: async () => (await import('./kafka.ts')).runKafkaBench(),
  detectors: async () => (await import('./detectors.ts')).runDetectorBench(),
  compliance: async () => (await import('./compliance.ts')).runComplianceBench(),
  console: async () => (await import('./console.ts')).runConsoleBench(),
  posture: async () => (await import('./posture.ts')).runPostureBench(),
  soak: async () => (await import('./soak.ts')).runSoakBench(),
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
