import assert from 'node:assert/strict';
import { monotonicMs } from '../../node/validator.js';

describe('node/validator monotonicMs (the clock of commit latencies and tx ages)', () => {
  it('resolves differences below a millisecond, which Date.now() rounds to 0 or 1', () => {
    const t0 = monotonicMs();
    let t1 = monotonicMs();
    while (t1 === t0) t1 = monotonicMs();
    const d = t1 - t0;
    assert.ok(d > 0 && d < 1, `consecutive readings differ by ${d} ms`);
  });

  it('never runs backwards, so a latency is never negative', () => {
    let last = monotonicMs();
    for (let i = 0; i < 100_000; i++) {
      const t = monotonicMs();
      assert.ok(t >= last, `${t} < ${last}`);
      last = t;
    }
  });

  it('advances at the rate of the wall clock over a short interval', async () => {
    const m0 = monotonicMs();
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    const dm = monotonicMs() - m0;
    const dw = Date.now() - w0;
    // Date.now() is whole milliseconds and a loaded machine can preempt between the two reads.
    assert.ok(Math.abs(dm - dw) <= 5, `monotonic ${dm} ms against wall ${dw} ms`);
  });
});
