// The scenario generator: labelled, seeded mesh traffic in real wire formats, for `ztwatch
// simulate`, `ztwatch eval`, the detector benchmark and the live demo.
export { createScenario, createDemoScenario, computeDailyShape, groupByFormat, ATTACK_CLASSES, EXPECTED_DETECTOR, ATTACK_WARMUP_MS } from './scenario.ts';
export type { AttackClass, GeneratedLine, Scenario, ScenarioLabel, ScenarioOptions } from './scenario.ts';
export type { SimMesh, SimWorkload, SimEdge } from './mesh.ts';
export { createRandomScenario, RANDOM_ATTACK_WARMUP_MS } from './randomized.ts';
export type { RandomScenario, RandomScenarioOptions, ScenarioProfile } from './randomized.ts';
