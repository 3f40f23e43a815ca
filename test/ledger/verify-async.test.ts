import assert from 'node:assert/strict';
import { verify, verifyAsync } from '../../ledger/keys.js';
import { precheckTxs, precheckTxsAsync } from '../../ledger/state.js';
import { signingBytesOfEncoded } from '../../ledger/tx.js';
import { CHAIN, seedKey, signed, transfer } from './helpers.js';

const a = seedKey(0);
const b = seedKey(1);

describe('ledger/keys verifyAsync', () => {
  it('agrees with verify on good, flipped and malformed signatures, many at once', async () => {
    // More than the in-flight bound, so queued verifications must also complete correctly.
    const txs = Array.from({ length: 200 }, (_, i) => signed(a, BigInt(i + 1), transfer(b, 1n)));
    const cases = txs.map((bytes, i) => {
      const msg = signingBytesOfEncoded(bytes);
      const sig = bytes.slice(bytes.length - 64);
      if (i % 3 === 1) sig[i % 64]! ^= 1;
      const key = i % 7 === 2 ? b.publicKey : i % 11 === 3 ? a.publicKey.subarray(1) : a.publicKey;
      return { sig, msg, key };
    });
    const got = await Promise.all(cases.map((c) => verifyAsync(c.sig, c.msg, c.key)));
    const want = cases.map((c) => verify(c.sig, c.msg, c.key));
    assert.deepEqual(got, want);
    assert.ok(want.some((w) => w) && want.some((w) => !w), 'both outcomes are exercised');
  });

  it('never rejects on a key that is not a curve point', async () => {
    const tx = signed(a, 1n, transfer(b, 1n));
    assert.equal(
      await verifyAsync(tx.slice(-64), signingBytesOfEncoded(tx), new Uint8Array(32).fill(0xff)),
      false,
    );
  });
});

describe('ledger/state precheckTxsAsync', () => {
  it('gives exactly what precheckTxs gives, skipping txs the caller already verified', async () => {
    const bad = signed(a, 2n, transfer(b, 1n));
    bad[bad.length - 1]! ^= 1;
    const txs = [
      signed(a, 1n, transfer(b, 1n)),
      bad,
      signed(a, 3n, transfer(b, 1n), 'other'),
      new Uint8Array([1]),
    ];
    assert.deepEqual(await precheckTxsAsync(txs, CHAIN), precheckTxs(txs, CHAIN));
    // A caller's word that a tx verified is taken (the hash covers the signature): the forged one passes.
    const trusted = (): boolean => true;
    const got = await precheckTxsAsync(txs, CHAIN, trusted);
    assert.equal(got[1]?.rejection, null);
    assert.deepEqual(got, precheckTxs(txs, CHAIN, trusted));
  });
});
