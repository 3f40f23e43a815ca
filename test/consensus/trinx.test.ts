import assert from 'node:assert/strict';
import { sha256 } from '../../consensus/digest.js';
import { Counter, SoftwareTrinx } from '../../consensus/index.js';

const KEY = new Uint8Array(32).fill(1);
const d = (s: string): Uint8Array => sha256(new TextEncoder().encode(s));
const v = (view: bigint, order: bigint) => ({ view, order });

describe('SoftwareTrinx', () => {
  it('certifies an independent value only when it is strictly greater than the counter', () => {
    const t = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    assert.ok(t.certifyIndependent(Counter.ORDER, v(0n, 2n), d('a')).ok);
    const again = t.certifyIndependent(Counter.ORDER, v(0n, 2n), d('b'));
    assert.deepEqual(again, { ok: false, error: 'counter-not-monotonic' });
    assert.equal(t.certifyIndependent(Counter.ORDER, v(0n, 1n), d('b')).ok, false);
    // Lexicographic: a higher view beats any order in a lower one, and order is a full u64.
    assert.ok(t.certifyIndependent(Counter.ORDER, v(1n, 0n), d('c')).ok);
    assert.ok(t.certifyIndependent(Counter.ORDER, v(1n, (1n << 40n) + 5n), d('c')).ok);
    assert.deepEqual(t.current(Counter.ORDER), v(1n, (1n << 40n) + 5n));
  });

  it('keeps counters independent of each other', () => {
    const t = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    assert.ok(t.certifyIndependent(Counter.ORDER, v(3n, 0n), d('a')).ok);
    assert.ok(t.certifyIndependent(Counter.NEWVIEW, v(1n, 0n), d('a')).ok);
    assert.ok(t.certifyIndependent(Counter.ACK, v(1n, 0n), d('a')).ok);
  });

  it('chains continuing certificates: each binds the previous value, equal values allowed, lower refused', () => {
    const t = new SoftwareTrinx(KEY, { validator: 2, pillar: 1 });
    const a = t.certifyIndependent(Counter.ORDER, v(0n, 7n), d('p'));
    assert.ok(a.ok);
    const c1 = t.certifyContinuing(Counter.ORDER, v(1n, 0n), d('vc1'));
    assert.ok(c1.ok);
    assert.deepEqual(c1.value.prev, v(0n, 7n));
    const c2 = t.certifyContinuing(Counter.ORDER, v(1n, 0n), d('vc1-again'));
    assert.ok(c2.ok);
    assert.deepEqual(c2.value.prev, c1.value.value);
    assert.equal(t.certifyContinuing(Counter.ORDER, v(0n, 9n), d('x')).ok, false);
    const verifier = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    assert.ok(verifier.verifyContinuing(c1.value, d('vc1')));
    // Claiming a different previous value (hiding the gap) breaks the MAC.
    assert.equal(verifier.verifyContinuing({ ...c1.value, prev: v(0n, 3n) }, d('vc1')), false);
    assert.equal(verifier.verifyContinuing(c1.value, d('other')), false);
    assert.equal(
      verifier.verifyIndependent(c1.value, d('vc1')),
      false,
      'a continuing cert is not independent',
    );
  });

  it('binds the issuer: a certificate relabelled with another validator or pillar does not verify', () => {
    const a = new SoftwareTrinx(KEY, { validator: 1, pillar: 0 });
    const verifier = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    const c = a.certifyIndependent(Counter.ORDER, v(0n, 2n), d('m'));
    assert.ok(c.ok);
    assert.ok(verifier.verifyIndependent(c.value, d('m')));
    assert.equal(
      verifier.verifyIndependent({ ...c.value, issuer: { validator: 2, pillar: 0 } }, d('m')),
      false,
    );
    assert.equal(
      verifier.verifyIndependent({ ...c.value, issuer: { validator: 1, pillar: 1 } }, d('m')),
      false,
    );
    assert.equal(verifier.verifyIndependent({ ...c.value, counter: Counter.ACK }, d('m')), false);
    assert.equal(verifier.verifyIndependent({ ...c.value, value: v(0n, 3n) }, d('m')), false);
    const p = a.certifyPlain(d('cp'));
    assert.ok(verifier.verifyPlain(p, d('cp')));
    assert.equal(verifier.verifyPlain({ ...p, issuer: { validator: 0, pillar: 0 } }, d('cp')), false);
  });

  it('rejects certificates made with another key', () => {
    const evil = new SoftwareTrinx(new Uint8Array(32).fill(2), { validator: 1, pillar: 0 });
    const verifier = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    const c = evil.certifyIndependent(Counter.ORDER, v(0n, 2n), d('m'));
    assert.ok(c.ok);
    assert.equal(verifier.verifyIndependent(c.value, d('m')), false);
  });

  it('verification never changes counters', () => {
    const t = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    const other = new SoftwareTrinx(KEY, { validator: 1, pillar: 0 });
    const c = other.certifyIndependent(Counter.ORDER, v(5n, 5n), d('m'));
    assert.ok(c.ok);
    t.verifyIndependent(c.value, d('m'));
    assert.deepEqual(t.current(Counter.ORDER), v(0n, 0n));
  });

  it('restores exported counters so a restart cannot reuse a value', () => {
    const t = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 });
    assert.ok(t.certifyIndependent(Counter.ORDER, v(2n, 10n), d('m')).ok);
    const restarted = new SoftwareTrinx(KEY, { validator: 0, pillar: 0 }, t.exportState());
    assert.equal(restarted.certifyIndependent(Counter.ORDER, v(2n, 10n), d('other')).ok, false);
    assert.ok(restarted.certifyIndependent(Counter.ORDER, v(2n, 11n), d('other')).ok);
  });

  it('never shows its key in JSON or exported state', () => {
    const key = new Uint8Array(32).fill(0xab);
    const t = new SoftwareTrinx(key, { validator: 0, pillar: 0 });
    const text = JSON.stringify({ t, s: t.exportState() }, (_k, x) =>
      typeof x === 'bigint' ? x.toString() : x,
    );
    assert.equal(text.includes('abab'), false);
    assert.equal(text.includes('171,171'), false);
  });
});
