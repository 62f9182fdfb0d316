import { describe, expect, it } from 'vitest';
import { HELD_OUT_SEEDS, INDEPENDENT_HELD_OUT_SEEDS, INDEPENDENT_PREVIOUS_HELD_OUT_SEEDS, INDEPENDENT_TUNING_SEEDS, PREVIOUS_HELD_OUT_SEEDS, TUNING_SEEDS, planScenarios, runScenario } from '../../cli/commands/eval.ts';
import { createTestConfig } from '../helpers/store.ts';

describe('ztwatch eval --set independent', () => {
  it('keeps its seeds apart from each other and from the randomized sets, by its written rule', () => {
    const isPrime = (n: number) => n > 1 && Array.from({ length: Math.floor(Math.sqrt(n)) - 1 }, (_, i) => i + 2).every((d) => n % d !== 0);
    const firstPrimeFrom = (n: number): number => (isPrime(n) ? n : firstPrimeFrom(n + 1));
    expect(INDEPENDENT_HELD_OUT_SEEDS).toEqual(Array.from({ length: 6 }, (_, k) => firstPrimeFrom(21_000_000 + k * 199_999)));
    expect(INDEPENDENT_PREVIOUS_HELD_OUT_SEEDS).toEqual([
      ...Array.from({ length: 6 }, (_, k) => firstPrimeFrom(17_000_000 + k * 233_323)),
      ...Array.from({ length: 6 }, (_, k) => firstPrimeFrom(13_000_000 + k * 211_811)),
      ...Array.from({ length: 6 }, (_, k) => firstPrimeFrom(9_000_000 + k * 111_111)),
    ]);
    // The fresh list shares no seed with the tuning seeds or the list seen before.
    expect(INDEPENDENT_HELD_OUT_SEEDS.filter((s) => INDEPENDENT_TUNING_SEEDS.includes(s) || INDEPENDENT_PREVIOUS_HELD_OUT_SEEDS.includes(s))).toEqual([]);
    const randomized = new Set([...TUNING_SEEDS, ...HELD_OUT_SEEDS, ...PREVIOUS_HELD_OUT_SEEDS]);
    expect([...INDEPENDENT_HELD_OUT_SEEDS, ...INDEPENDENT_PREVIOUS_HELD_OUT_SEEDS].filter((s) => randomized.has(s))).toEqual([]);
  });

  it('backtests an independent trace through the same path and scores it', async () => {
    const config = createTestConfig();
    const [plan] = planScenarios([INDEPENDENT_TUNING_SEEDS[0] as number], 'independent tuning', 2, 4, ['policy_misconfiguration', 'new_edge']);
    if (!plan) throw new Error('no plan');
    const result = await runScenario({ ...plan, generator: 'independent' }, config);
    expect(result.deadLetters).toBe(0);
    expect(result.events).toBeGreaterThan(10_000);
    expect(result.labels.map((l) => l.class).sort()).toEqual(['new_edge', 'policy_misconfiguration']);
    // The independent generator's profile, not the randomized one's.
    expect(result.profile.topology).toBe('hubs');
    expect(result.profile.attackVariants).toHaveLength(2);
    expect(result.scores['ztwatch incidents']?.attacks).toBe(2);
  }, 300_000);
});
