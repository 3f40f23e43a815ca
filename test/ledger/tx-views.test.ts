// The allocation cuts on the tx paths take risks that these tests pin: decoded fields that are
// views into the input (only where asked for), the signed bytes assembled in a reused scratch,
// and execution's decoded txs that are views into the block's private batch copy.
import assert from 'node:assert/strict';
import { encodeBatch } from '../../ledger/batch.js';
import { Reader, toHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { sha256, verify } from '../../ledger/keys.js';
import { startPrecheck } from '../../ledger/state.js';
import { LedgerStore } from '../../ledger/store.js';
import {
  decodeTx,
  KV_VALUE_BYTES_MAX,
  type SignedTx,
  signingBytesOfEncoded,
  txHash,
  txHashWithHex,
  verifyEncodedTx,
} from '../../ledger/tx.js';
import { bytes, CHAIN, seedKey, signed, tempDir, transfer } from './helpers.js';

const alice = seedKey(0);
const bob = seedKey(1);

/** Whether `a` shares memory with `b` (same buffer, overlapping ranges). */
const aliases = (a: Uint8Array, b: Uint8Array): boolean =>
  a.buffer === b.buffer &&
  a.byteOffset < b.byteOffset + b.byteLength &&
  b.byteOffset < a.byteOffset + a.byteLength;

const fields = (tx: SignedTx): Uint8Array[] => {
  const p = tx.payload;
  const out = [tx.from, tx.signature];
  if (p.type === 'transfer') out.push(p.to);
  else out.push(p.key);
  if (p.type === 'kv.put' || p.type === 'kv.cas') out.push(p.value);
  return out;
};

describe('ledger/tx decoding with and without views', () => {
  const encoded = [
    signed(alice, 1n, transfer(bob, 5n)),
    signed(alice, 2n, { type: 'kv.put', key: bytes('k'), value: bytes('some value') }),
  ];

  it('copies every byte field out of a plain Uint8Array by default, so later changes to it do not reach the tx', () => {
    for (const enc of encoded) {
      const input = new Uint8Array(enc);
      const d = decodeTx(input);
      assert.ok(d.ok);
      for (const f of fields(d.value)) assert.equal(aliases(f, input), false);
      input.fill(0xee);
      const again = decodeTx(enc);
      assert.ok(again.ok);
      assert.deepEqual(d.value, again.value);
    }
  });

  it('gives views into the input when asked, with the same values as a copying decode', () => {
    for (const enc of encoded) {
      // Inside a larger buffer, at an offset, as a tx inside a batch.
      const outer = new Uint8Array(enc.length + 10);
      outer.set(enc, 7);
      const input = outer.subarray(7, 7 + enc.length);
      const v = decodeTx(input, { views: true });
      const c = decodeTx(enc);
      assert.ok(v.ok && c.ok);
      assert.deepEqual(v.value, c.value);
      for (const f of fields(v.value)) assert.equal(aliases(f, input), true);
      assert.equal(outer[6], 0, 'nothing outside the tx was read into a field');
    }
  });

  it('reads views over a Reader only when its views option is set', () => {
    const input = Uint8Array.of(0, 0, 0, 2, 9, 8, 7);
    const copy = new Reader(input).bytes(10);
    const view = new Reader(input, { views: true }).bytes(10);
    assert.deepEqual([...copy], [9, 8]);
    assert.deepEqual([...view], [9, 8]);
    assert.equal(aliases(copy, input), false);
    assert.equal(aliases(view, input), true);
    assert.deepEqual([...new Reader(input, { views: true }).raw(3)], [0, 0, 0]);
  });

  it('gives a tx hash in an array of its own, equal to txHash', () => {
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 300; i++) {
      const enc = signed(alice, BigInt(i + 1), transfer(bob, 1n));
      const { hash, hashHex } = txHashWithHex(enc);
      assert.deepEqual(hash, txHash(enc));
      assert.equal(hashHex, toHex(hash));
      assert.equal(hash.byteOffset, 0);
      assert.equal(hash.buffer.byteLength, 32, 'not a view into a shared pool');
      assert.equal(seen.has(hash.buffer), false);
      seen.add(hash.buffer);
    }
  });
});

describe('ledger/tx verifyEncodedTx', () => {
  it('agrees with verify over signingBytesOfEncoded for small and large txs in any order', () => {
    const small = signed(alice, 1n, transfer(bob, 5n));
    const large = signed(alice, 2n, {
      type: 'kv.put',
      key: bytes('big'),
      value: new Uint8Array(KV_VALUE_BYTES_MAX).fill(3),
    });
    // Large first grows the scratch, small after it must not see the large one's tail.
    for (const enc of [small, large, small, large]) {
      const d = decodeTx(enc);
      assert.ok(d.ok);
      assert.equal(verifyEncodedTx(enc, d.value.signature, d.value.from), true);
      assert.equal(verify(d.value.signature, signingBytesOfEncoded(enc), d.value.from), true);
      for (const at of [0, 13, enc.length - 65, enc.length - 1]) {
        const bad = new Uint8Array(enc);
        bad[at]! ^= 1;
        const db = decodeTx(bad);
        if (!db.ok) continue;
        assert.equal(verifyEncodedTx(bad, db.value.signature, db.value.from), false, `bit flipped at ${at}`);
      }
    }
    assert.equal(verifyEncodedTx(new Uint8Array(10), new Uint8Array(64), alice.publicKey), false);
  });
});

describe('ledger/state startPrecheck over views', () => {
  it('keeps prechecked txs correct while their bytes are kept, and their fields are views into them', async () => {
    const txs = [
      signed(alice, 1n, transfer(bob, 5n)),
      signed(bob, 1n, { type: 'kv.delete', key: bytes('x') }),
    ];
    const forged = new Uint8Array(txs[0]!);
    forged[forged.length - 1]! ^= 1;
    // Not told any signature is verified: both are checked, as split messages, inline.
    const pre = await startPrecheck([...txs, forged], CHAIN).txs;
    assert.equal(pre[2]?.rejection?.ok, false, 'the forged signature is refused');
    pre.pop();
    for (const p of pre) {
      assert.equal(p.rejection, null);
      assert.ok(p.tx !== null);
      for (const f of fields(p.tx)) assert.equal(aliases(f, p.bytes), true);
    }
  });
});

describe('ledger/executor with decoded views into its batch copy', () => {
  it('caches kv entries that share no memory with the block, and stays right when the caller reuses its batch', async () => {
    const t = tempDir('tx-views');
    const store = await LedgerStore.open(t.dir, {
      genesisHash: sha256(bytes('tx views genesis')),
      genesisAccounts: [
        { address: alice.publicKey, balance: 100n },
        { address: bob.publicKey, balance: 100n },
      ],
      sync: false,
    });
    try {
      const txs = [
        signed(alice, 1n, { type: 'kv.put', key: bytes('lock'), value: bytes('holder-1') }),
        signed(bob, 1n, transfer(alice, 7n)),
      ];
      const batch = encodeBatch({ timestampMs: 1n, txs });
      // Not told any signature is verified: the split-message checks go through the pool.
      const exec = new Executor({ store, chainId: CHAIN });
      const started = exec.executeBatchDetailed({ order: 0n, view: 0n, proposer: 0, batch });
      batch.fill(0xab); // a transport may reuse the buffer a batch was delivered in
      const { block } = await started.executed;
      assert.deepEqual(block.txs, txs);
      assert.deepEqual(block.results, [{ ok: true }, { ok: true }]);
      const entry = store.reader.getKv(toHex(bytes('lock')));
      assert.ok(entry !== undefined && entry.value !== null);
      assert.deepEqual(entry.value, bytes('holder-1'));
      assert.deepEqual(entry.lastModifiedBy, alice.publicKey);
      // The state cache outlives the block by far: it must not pin the block's batch copy.
      const blockBuffer = block.txs[0]!.buffer;
      assert.notEqual(entry.value.buffer, blockBuffer);
      assert.notEqual(entry.lastModifiedBy.buffer, blockBuffer);
      assert.equal(store.reader.getAccount(toHex(alice.publicKey))?.balance, 107n);
      const onDisk = await store.getKv(bytes('lock'));
      assert.deepEqual(onDisk?.value, bytes('holder-1'));
    } finally {
      await store.close();
      t.cleanup();
    }
  });
});
