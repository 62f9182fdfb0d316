// The console imports nothing from the rest of the project (it talks to the API only), so
// console/src/types.ts restates the API bodies it reads. This ties that copy to its sources: the
// API's schemas (checked by the typecheck) and the lists the console also needs at run time.
import type { Static } from '@sinclair/typebox';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { SERIES_COUNTERS as STORE_SERIES_COUNTERS } from '../../store/graph-queries.ts';
import type { GraphSchema } from '../../api/schemas.ts';
import { SEVERITIES as CORE_SEVERITIES } from '../../core/anomaly.ts';
import { COUNTER_OF, SERIES_COUNTERS, SEVERITIES, type Graph } from '../../console/src/types.ts';
import { DETECTOR_NAMES } from '../../detectors/registry.ts';

describe('console body types', () => {
  it('describe the graph body exactly as the API schema does', () => {
    expectTypeOf<Graph>().toEqualTypeOf<Static<typeof GraphSchema>>();
  });

  it('list the severities and series counters of core/ and store/', () => {
    expect(SEVERITIES).toEqual(CORE_SEVERITIES);
    expect(SERIES_COUNTERS).toEqual(STORE_SERIES_COUNTERS);
  });

  it('chart the evidence of every registered detector, and only those', () => {
    expect(Object.keys(COUNTER_OF).sort()).toEqual([...DETECTOR_NAMES].sort());
  });
});
