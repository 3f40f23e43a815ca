import assert from 'node:assert/strict';
import { makeConfig } from '../../consensus/index.js';
import { LocalCluster } from '../sim/cluster.js';

const batch = (i: number): Uint8Array => new TextEncoder().encode(`batch-${i}`);

describe('consensus normal case', () => {
  for (const [n, pillars] of [
    [3, 1],
    [5, 2],
    [7, 4],
  ] as const) {
    it(`commits and delivers proposed batches in order at every replica (n=${n}, P=${pillars})`, () => {
      const c = new LocalCluster(makeConfig({ n, pillars, checkpointInterval: 4, window: 16 }));
      for (let i = 0; i < 40; i++) {
        c.step(0, { type: 'propose', batch: batch(i) });
        c.drain();
      }
      for (let v = 0; v < n; v++) {
        const ex = c.executed[v]!;
        assert.equal(ex.length, 40, `replica ${v}`);
        ex.forEach((e, i) => {
          assert.equal(e.order, BigInt(i));
          assert.deepEqual(e.batch, batch(i));
        });
      }
      assert.deepEqual(c.rejects, []);
      // 40 orders with K = 4 leave the low watermark at 40 in every pillar.
      for (const r of c.replicas) for (const p of r.pillars) assert.equal(p.lowWatermark, 40n);
    });
  }
});
