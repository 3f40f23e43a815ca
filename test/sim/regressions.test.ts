// Seeds that once broke the core stay tests forever (TigerBeetle's rule). Each ran with
// the `npm run sim` defaults for its grid case; both variants are kept because the
// original report did not pin whether Byzantine replicas were on.
//  - seed 6: a replica left alone in a view change could never catch up its tail of orders.
//  - seed 5066: a correct replica's VIEW-CHANGE was rejected for a too-strict `top` check.
import assert from 'node:assert/strict';
import { gridCase, replayCommand, runSeed } from './sim.js';

describe('simulator regression seeds', function () {
  this.timeout(120_000);
  for (const seed of [6, 5066]) {
    for (const byzantine of [false, true]) {
      it(`seed ${seed}${byzantine ? ' with Byzantine replicas' : ''} keeps every invariant`, () => {
        const r = runSeed({
          seed,
          ...gridCase(seed),
          byzantine,
          faults: true,
          healMs: 2000,
          livenessMs: 6000,
          stepsMax: 400_000,
        });
        assert.deepEqual(r.violations, [], `replay: ${replayCommand(r, byzantine)}`);
        assert.ok(r.committed > 0);
      });
    }
  }
});
