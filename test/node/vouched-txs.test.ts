import assert from 'node:assert/strict';
import { VouchedTxs } from '../../node/vouched-txs.js';

const SELF = 2;
const limits = { holdMs: 100, txCountMax: 3, bytesMax: 1000 };
const tx = (n: number, size = 10): Uint8Array => new Uint8Array(size).fill(n);

describe('node/vouched-txs', () => {
  it('vouches for a held tx only when the batch voucher is neither the gossiping peer nor this validator', () => {
    const v = new VouchedTxs(SELF, limits);
    assert.equal(v.hold('aa', tx(1), 1, 0), true);
    assert.equal(v.vouches('aa', 0), true, 'gossiped by 1, cut by leader 0: two others');
    assert.equal(v.vouches('aa', 1), false, 'the gossiping peer proposing it is still one voucher');
    assert.equal(v.vouches('aa', SELF), false, 'this validator never vouches for itself');
    assert.equal(v.vouches('bb', 0), false, 'a tx not held');
  });

  it('never holds its own gossip, and holds a tx once', () => {
    const v = new VouchedTxs(SELF, limits);
    assert.equal(v.hold('aa', tx(1), SELF, 0), false);
    assert.equal(v.hold('aa', tx(1), 1, 0), true);
    assert.equal(v.hold('aa', tx(1), 0, 5), true, 'held already: the first gossip counts');
    assert.equal(v.size, 1);
    assert.equal(v.vouches('aa', 0), true);
  });

  it('refuses to hold past its count and byte limits, so the caller verifies at once', () => {
    const v = new VouchedTxs(SELF, limits);
    for (const h of ['a', 'b', 'c']) assert.equal(v.hold(h, tx(1), 1, 0), true);
    assert.equal(v.hold('d', tx(1), 1, 0), false, 'count');
    const w = new VouchedTxs(SELF, limits);
    assert.equal(w.hold('a', tx(1, 600), 1, 0), true);
    assert.equal(w.hold('b', tx(1, 600), 1, 0), false, 'bytes');
    assert.equal(w.bytes, 600);
  });

  it('hands out txs past their hold oldest first, or all of them, and forgets delivered ones', () => {
    const v = new VouchedTxs(SELF, limits);
    assert.equal(v.oldestAgeMs(10), 0);
    v.hold('a', tx(1), 1, 0);
    v.hold('b', tx(2), 1, 50);
    v.hold('c', tx(3), 1, 90);
    assert.equal(v.oldestAgeMs(120), 120, 'the request timer sees the oldest held tx');
    assert.equal(v.forget(['b', 'zz']), 1);
    assert.equal(v.vouches('b', 0), false, 'delivered: no longer held');
    assert.deepEqual(
      v.takeDue(150, false).map((h) => h.hashHex),
      ['a'],
    );
    assert.deepEqual(
      v.takeDue(150, true).map((h) => [h.hashHex, h.from, h.bytes[0]]),
      [['c', 1, 3]],
    );
    assert.equal(v.size, 0);
    assert.equal(v.bytes, 0);
  });

  it('keeps a copy of a tx that is a small view into a large frame, not the frame', () => {
    const frame = new Uint8Array(4096);
    const view = frame.subarray(100, 120);
    const v = new VouchedTxs(SELF, limits);
    v.hold('a', view, 1, 0);
    const [h] = v.takeDue(0, true);
    assert.ok(h);
    assert.equal(h.bytes.length, 20);
    assert.notEqual(h.bytes.buffer, frame.buffer);
  });
});
