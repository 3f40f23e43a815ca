import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex, Writer } from '../../ledger/codec/binary.js';
import {
  checkTx,
  decodeTx,
  encodeTx,
  KV_KEY_BYTES_MAX,
  KV_VALUE_BYTES_MAX,
  type SignedTx,
  signingBytes,
  signTx,
  TX_BYTES_MAX,
  type TxPayload,
  txFromJson,
  txHash,
  txHashWithHex,
  txToJson,
  verifyTx,
} from '../../ledger/tx.js';
import { bytes, CHAIN, seedKey, signed, transfer } from './helpers.js';

const alice = seedKey(0);
const bob = seedKey(1);

const arbBytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const arbU64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const arbPayload: fc.Arbitrary<TxPayload> = fc
  .oneof(
    fc.record({ type: fc.constant('transfer' as const), to: arbBytes(32, 32), amount: arbU64 }),
    fc.record({ type: fc.constant('kv.put' as const), key: arbBytes(1, 40), value: arbBytes(0, 100) }),
    fc.record({ type: fc.constant('kv.delete' as const), key: arbBytes(1, 40) }),
    fc.record({
      type: fc.constant('kv.cas' as const),
      key: arbBytes(1, 40),
      expectedVersion: arbU64,
      value: arbBytes(0, 100),
    }),
  )
  .map((p) => ({ ...p }) as TxPayload); // fast-check records have a null prototype
const arbTx: fc.Arbitrary<SignedTx> = fc
  .record({
    chainId: fc.stringMatching(/^[a-z0-9-]{1,20}$/),
    from: arbBytes(32, 32),
    nonce: arbU64,
    payload: arbPayload,
    signature: arbBytes(64, 64),
  })
  .map((t) => ({ ...t }));

describe('ledger/tx codec', () => {
  it('round-trips every tx type through encodeTx and decodeTx', () => {
    fc.assert(
      fc.property(arbTx, (tx) => {
        const enc = encodeTx(tx);
        const dec = decodeTx(enc);
        assert.ok(dec.ok);
        assert.deepEqual(dec.value, tx);
        assert.deepEqual(encodeTx(dec.value), enc);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary bytes, and rejects them or re-encodes them identically', () => {
    fc.assert(
      fc.property(arbBytes(0, 300), (b) => {
        const dec = decodeTx(b);
        if (dec.ok) assert.deepEqual(encodeTx(dec.value), b);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every truncation of a valid tx as truncated', () => {
    const enc = signed(alice, 1n, {
      type: 'kv.cas',
      key: bytes('k'),
      expectedVersion: 3n,
      value: bytes('v'),
    });
    for (let n = 0; n < enc.length; n++) {
      const dec = decodeTx(enc.subarray(0, n));
      assert.equal(dec.ok, false);
      if (!dec.ok) assert.equal(dec.error.code, 'truncated', `prefix of ${n} bytes`);
    }
  });

  it('rejects trailing bytes, unknown types and unknown versions', () => {
    const enc = signed(alice, 1n, transfer(bob, 5n));
    const trailing = decodeTx(Uint8Array.from([...enc, 0]));
    assert.ok(!trailing.ok && trailing.error.code === 'trailing-bytes');
    const badVersion = Uint8Array.from(enc);
    badVersion[0] = 2;
    const v = decodeTx(badVersion);
    assert.ok(!v.ok && v.error.code === 'bad-version');
    const badType = Uint8Array.from(enc);
    badType[1 + 4 + CHAIN.length + 32 + 8] = 9;
    const t = decodeTx(badType);
    assert.ok(!t.ok && t.error.code === 'bad-tag');
  });

  it('rejects oversized input before decoding and oversized fields by their length prefix', () => {
    const big = decodeTx(new Uint8Array(TX_BYTES_MAX + 1));
    assert.ok(!big.ok && big.error.code === 'oversized');
    // A kv.put whose key length prefix claims more than KV_KEY_BYTES_MAX.
    const w = new Writer()
      .u8(1)
      .string(CHAIN)
      .raw(alice.publicKey)
      .u64(1n)
      .u8(2)
      .u32(KV_KEY_BYTES_MAX + 1);
    const dec = decodeTx(w.finish());
    assert.ok(!dec.ok && dec.error.code === 'oversized' && dec.error.field === 'payload.key');
    assert.throws(() =>
      encodeTx({
        ...signTx(
          { chainId: CHAIN, from: alice.publicKey, nonce: 1n, payload: transfer(bob, 1n) },
          alice.secretKey,
        ),
        payload: { type: 'kv.put', key: bytes('k'), value: new Uint8Array(KV_VALUE_BYTES_MAX + 1) },
      }),
    );
  });

  it('refuses a tx for another chain when the expected chain id is given', () => {
    const enc = signed(alice, 1n, transfer(bob, 5n), 'other-chain');
    assert.ok(decodeTx(enc).ok);
    const dec = decodeTx(enc, { chainId: CHAIN });
    assert.ok(!dec.ok && dec.error.field === 'chainId');
    const chk = checkTx(enc, CHAIN);
    assert.ok(!chk.ok && chk.error.code === 'wrong-chain');
  });

  it('verifies a good signature and rejects a flipped bit anywhere in the signed bytes or signature', () => {
    const enc = signed(alice, 7n, { type: 'kv.put', key: bytes('lock'), value: bytes('me') });
    assert.ok(checkTx(enc, CHAIN).ok);
    for (const pos of [
      1 + 4 + 3,
      1 + 4 + CHAIN.length + 40,
      enc.length - 70,
      enc.length - 1,
      enc.length - 40,
    ]) {
      const bad = Uint8Array.from(enc);
      bad[pos]! ^= 1;
      const chk = checkTx(bad, CHAIN);
      assert.ok(!chk.ok, `bit flip at ${pos} accepted`);
      assert.ok(['bad-signature', 'malformed', 'wrong-chain'].includes(chk.error.code));
    }
    const dec = decodeTx(enc);
    assert.ok(dec.ok && verifyTx(dec.value));
    assert.equal(verifyTx({ ...dec.value, from: bob.publicKey }), false);
  });

  it('domain-separates the signed bytes and hashes the whole encoding', () => {
    const tx = signTx(
      { chainId: CHAIN, from: alice.publicKey, nonce: 1n, payload: transfer(bob, 1n) },
      alice.secretKey,
    );
    const sb = signingBytes(tx);
    assert.equal(new TextDecoder().decode(sb.subarray(0, 13)), 'hybster/tx/v1');
    const enc = encodeTx(tx);
    assert.deepEqual(sb.subarray(13), enc.subarray(0, enc.length - 64));
    assert.equal(txHash(enc).length, 32);
    assert.notDeepEqual(txHash(enc), txHash(signed(alice, 2n, transfer(bob, 1n))));
  });

  it('gives the same hash and hex from one SHA-256 as txHash and toHex do, for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(8), (b, cut) => {
        // A view into a larger buffer too: only the view's bytes may be hashed.
        const view = b.subarray(Math.min(cut, b.length));
        const { hash, hashHex } = txHashWithHex(view);
        assert.deepEqual(hash, txHash(view));
        assert.equal(hashHex, toHex(txHash(view)));
      }),
    );
  });

  it('round-trips the JSON form and names the bad field in errors', () => {
    fc.assert(
      fc.property(arbTx, (tx) => {
        const j = JSON.parse(JSON.stringify(txToJson(tx)));
        const back = txFromJson(j);
        assert.ok(back.ok);
        assert.deepEqual(back.value, tx);
      }),
      { numRuns: 200 },
    );
    const good = txToJson(
      signTx(
        { chainId: CHAIN, from: alice.publicKey, nonce: 1n, payload: transfer(bob, 1n) },
        alice.secretKey,
      ),
    );
    const badAmount = txFromJson({ ...good, payload: { ...good.payload, amount: '-1' } });
    assert.ok(!badAmount.ok && badAmount.error.message.startsWith('payload.amount:'));
    const badFrom = txFromJson({ ...good, from: 'abc' });
    assert.ok(!badFrom.ok && badFrom.error.message.startsWith('from:'));
    const tooBig = txFromJson({ ...good, nonce: (1n << 64n).toString() });
    assert.ok(!tooBig.ok && tooBig.error.message.startsWith('nonce:'));
  });
});
