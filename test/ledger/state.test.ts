import assert from 'node:assert/strict';
import { toHex } from '../../ledger/codec/binary.js';
import { encodeAccount, MemoryState } from '../../ledger/state.js';
import { bytes, CHAIN, seedKey, signed, transfer } from './helpers.js';

const a = seedKey(0);
const b = seedKey(1);
const c = seedKey(2);
const genesis = [
  { address: a.publicKey, balance: 1000n },
  { address: b.publicKey, balance: 10n },
];

function blocks(): Uint8Array[][] {
  return [
    [
      signed(a, 1n, transfer(b, 100n)),
      signed(b, 1n, transfer(c, 50n)),
      signed(a, 2n, { type: 'kv.put', key: bytes('k'), value: bytes('v1') }),
    ],
    [
      signed(c, 1n, transfer(a, 25n)),
      signed(b, 2n, { type: 'kv.cas', key: bytes('k'), expectedVersion: 1n, value: bytes('v2') }),
    ],
    [signed(a, 3n, { type: 'kv.delete', key: bytes('k') }), new Uint8Array([0xff])],
  ];
}

describe('ledger/state', () => {
  it('gives the same results and state digest when the same blocks are replayed', () => {
    const s1 = new MemoryState(genesis);
    const s2 = new MemoryState([...genesis].reverse()); // genesis order does not matter
    assert.deepEqual(s1.digest, s2.digest);
    for (const blk of blocks()) {
      const r1 = s1.applyBlock(blk, CHAIN);
      const r2 = s2.applyBlock(blk, CHAIN);
      assert.deepEqual(r1.results, r2.results);
      assert.deepEqual(s1.digest, s2.digest);
    }
    assert.equal(s1.accounts.get(toHex(c.publicKey))?.balance, 25n);
  });

  it('changes the digest when the same txs are ordered differently', () => {
    const [blk] = blocks();
    const s1 = new MemoryState(genesis);
    const s2 = new MemoryState(genesis);
    s1.applyBlock(blk!, CHAIN);
    s2.applyBlock([blk![1]!, blk![0]!, blk![2]!], CHAIN);
    assert.notDeepEqual(s1.digest, s2.digest);
  });

  it('records invalid txs as typed failures without touching state', () => {
    const s = new MemoryState(genesis);
    const before = s.accounts.get(toHex(a.publicKey));
    const badSig = signed(a, 1n, transfer(b, 1n));
    badSig[badSig.length - 1]! ^= 1;
    const out = s.applyBlock(
      [
        new Uint8Array([1, 2]),
        signed(a, 1n, transfer(b, 1n), 'other-chain'),
        badSig,
        signed(a, 5n, transfer(b, 1n)),
      ],
      CHAIN,
    );
    assert.deepEqual(
      out.results.map((r) => (r.ok ? 'ok' : r.code)),
      ['malformed', 'wrong-chain', 'bad-signature', 'bad-nonce'],
    );
    assert.deepEqual(s.accounts.get(toHex(a.publicKey)), before);
    assert.equal(out.accountWrites.size, 0);
  });

  it('refuses a replayed tx by its nonce, in the same block and in a later one', () => {
    const s = new MemoryState(genesis);
    const tx = signed(a, 1n, transfer(b, 10n));
    const r1 = s.applyBlock([tx, tx], CHAIN);
    assert.deepEqual(
      r1.results.map((r) => (r.ok ? 'ok' : r.code)),
      ['ok', 'bad-nonce'],
    );
    const r2 = s.applyBlock([tx], CHAIN);
    assert.ok(!r2.results[0]!.ok && r2.results[0]!.code === 'bad-nonce');
    assert.equal(s.accounts.get(toHex(a.publicKey))?.balance, 990n);
  });

  it('consumes the nonce of a tx that fails for insufficient funds, and moves no money', () => {
    const s = new MemoryState(genesis);
    const out = s.applyBlock([signed(b, 1n, transfer(a, 11n)), signed(b, 2n, transfer(a, 10n))], CHAIN);
    assert.deepEqual(
      out.results.map((r) => (r.ok ? 'ok' : r.code)),
      ['insufficient-funds', 'ok'],
    );
    assert.deepEqual(s.accounts.get(toHex(b.publicKey)), { balance: 0n, nonce: 2n });
  });

  it('implements compare-and-set on versions that never go back, even across a delete', () => {
    const s = new MemoryState(genesis);
    const key = bytes('leader');
    const put = (nonce: bigint, v: string) => signed(a, nonce, { type: 'kv.put', key, value: bytes(v) });
    const cas = (nonce: bigint, ver: bigint, v: string) =>
      signed(b, nonce, { type: 'kv.cas', key, expectedVersion: ver, value: bytes(v) });
    const codes = (blk: Uint8Array[]) => s.applyBlock(blk, CHAIN).results.map((r) => (r.ok ? 'ok' : r.code));
    assert.deepEqual(codes([cas(1n, 0n, 'b-first')]), ['ok']); // create-if-absent
    assert.deepEqual(codes([cas(2n, 0n, 'b-again')]), ['cas-mismatch']);
    assert.deepEqual(codes([put(1n, 'a')]), ['ok']); // version 2
    assert.deepEqual(codes([signed(a, 2n, { type: 'kv.delete', key })]), ['ok']); // tombstone, version 3
    assert.deepEqual(codes([signed(a, 3n, { type: 'kv.delete', key })]), ['not-found']);
    // A client that read version 1 or 0 before the delete cannot win now (no ABA).
    assert.deepEqual(codes([cas(3n, 1n, 'stale'), cas(4n, 0n, 'stale')]), ['cas-mismatch', 'cas-mismatch']);
    assert.deepEqual(codes([cas(5n, 3n, 'fresh')]), ['ok']);
    const e = s.kv.get(toHex(key))!;
    assert.equal(e.version, 4n);
    assert.deepEqual(e.value, bytes('fresh'));
    assert.deepEqual(e.lastModifiedBy, b.publicKey);
    assert.equal(e.lastModifiedHeight, s.height);
  });

  it('credits a recipient paid several times in a block with the sum, leaving earlier state objects alone', () => {
    const s = new MemoryState(genesis);
    s.applyBlock([signed(a, 1n, transfer(c, 1n))], CHAIN);
    const before = s.accounts.get(toHex(c.publicKey))!;
    const out = s.applyBlock(
      [signed(a, 2n, transfer(c, 2n)), signed(b, 1n, transfer(c, 3n)), signed(a, 3n, transfer(c, 4n))],
      CHAIN,
    );
    assert.deepEqual(
      out.results.map((r) => (r.ok ? 'ok' : r.code)),
      ['ok', 'ok', 'ok'],
    );
    assert.deepEqual(before, { balance: 1n, nonce: 0n }, 'the previous block state is not changed in place');
    assert.deepEqual(s.accounts.get(toHex(c.publicKey)), { balance: 10n, nonce: 0n });
    assert.deepEqual(out.accountWrites.get(toHex(a.publicKey))?.account, { balance: 993n, nonce: 3n });
  });

  it('encodes an account as balance then nonce, big-endian, and refuses values outside u64', () => {
    assert.equal(
      toHex(encodeAccount({ balance: 0x0102n, nonce: (1n << 64n) - 1n })),
      `${'0'.repeat(12)}0102${'f'.repeat(16)}`,
    );
    assert.throws(() => encodeAccount({ balance: -1n, nonce: 0n }), RangeError);
    assert.throws(() => encodeAccount({ balance: 0n, nonce: 1n << 64n }), RangeError);
  });
});
