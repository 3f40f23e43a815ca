import assert from 'node:assert/strict';
import { preciseNowMs } from '../../node/validator.js';

describe('node/validator preciseNowMs (the clock of commit latencies)', () => {
  it('stays within a millisecond of Date.now()', () => {
    for (let i = 0; i < 10_000; i++) {
      const before = Date.now();
      const t = preciseNowMs();
      const after = Date.now();
      assert.ok(t >= before - 1 && t <= after + 1, `${t} is not within 1 ms of [${before}, ${after}]`);
    }
  });

  it('resolves differences below a millisecond, which Date.now() rounds to 0 or 1', () => {
    const t0 = preciseNowMs();
    let t1 = preciseNowMs();
    while (t1 === t0) t1 = preciseNowMs();
    const d = t1 - t0;
    assert.ok(d > 0 && d < 1, `consecutive readings differ by ${d} ms`);
  });

  it('does not run backwards while the wall clock is not stepped', () => {
    let last = preciseNowMs();
    for (let i = 0; i < 10_000; i++) {
      const t = preciseNowMs();
      assert.ok(t >= last, `${t} < ${last}`);
      last = t;
    }
  });
});
