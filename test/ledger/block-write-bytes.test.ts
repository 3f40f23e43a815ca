// Pins every byte the executor and the store write for a fixed chain of blocks: keys, values
// and their order in the database, as one SHA-256 over the whole LevelDB after the blocks.
// The write path is tuned for CPU (records built in place in reused buffers, the tx index
// deduplicated without a string per tx); this test is what says such a change kept the
// on-disk format, the key layout and every hash (block, state digest, tx index) as they were.
// The pinned digest was taken with the write path as it stood before that tuning (this test
// compiled against commit cbd94a8; `npm run bench -- block-write` with
// BLOCK_WRITE_BENCH_BASELINE set to a build of such a commit compares the CPU).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ClassicLevel } from 'classic-level';
import { encodeBatch } from '../../ledger/batch.js';
import { blockHash, signCommit } from '../../ledger/block.js';
import { Executor } from '../../ledger/executor.js';
import { sha256 } from '../../ledger/keys.js';
import { LedgerStore } from '../../ledger/store.js';
import type { TxPayload } from '../../ledger/tx.js';
import { bytes, CHAIN, seedKey, signed, tempDir, transfer } from './helpers.js';

const DB_DIGEST_PINNED = '071e1b7ab6f6a52bb7981be315edd9edd57e1ec99c7267eac7888a8371c07371';

const keys = Array.from({ length: 24 }, (_, i) => seedKey(i));
const recipient = seedKey(100);
const validator = seedKey(200);
const genesisHash = sha256(bytes('block write bytes genesis'));
const genesisAccounts = keys.map((k, i) => ({ address: k.publicKey, balance: 1_000n + BigInt(i) }));

const kvPut = (key: string, value: string): TxPayload => ({
  type: 'kv.put',
  key: bytes(key),
  value: bytes(value),
});

/** The chain: every kind of result, each index key space, repeated and replayed txs, metadata. */
function blocks(): { txs: Uint8Array[]; ts: bigint }[] {
  const k = keys;
  const first = [
    signed(k[0]!, 1n, transfer(recipient, 10n)),
    signed(k[1]!, 1n, transfer(recipient, 11n)),
    signed(k[2]!, 1n, transfer(k[2]!, 5n)), // to itself: indexed once under its account
    signed(k[3]!, 1n, kvPut('alpha', 'one')),
    signed(k[4]!, 1n, kvPut('beta', 'two')),
  ];
  const tampered = signed(k[9]!, 1n, transfer(recipient, 1n));
  tampered[tampered.length - 1]! ^= 0xff;
  const dup = signed(k[5]!, 1n, transfer(k[6]!, 7n));
  const twice = signed(seedKey(302), 1n, kvPut('delta', 'd'));
  const second = [
    first[0]!, // replay of a committed tx: bad-nonce, its location stays in block 1
    dup,
    dup, // the same tx twice in one block: the second is bad-nonce, located once
    signed(k[7]!, 1n, transfer(recipient, 5_000n)), // insufficient funds
    Uint8Array.of(1, 2, 3), // malformed
    signed(k[8]!, 1n, transfer(recipient, 1n), 'other-chain'),
    tampered,
    signed(k[3]!, 2n, { type: 'kv.cas', key: bytes('alpha'), expectedVersion: 1n, value: bytes('uno') }),
    signed(k[4]!, 2n, { type: 'kv.cas', key: bytes('beta'), expectedVersion: 7n, value: bytes('x') }),
    signed(k[10]!, 1n, kvPut('gamma', 'g1')),
    signed(k[11]!, 1n, kvPut('gamma', 'g2')), // one key twice in a block: two history versions
    signed(k[12]!, 1n, { type: 'kv.delete', key: bytes('beta') }),
    signed(k[13]!, 1n, { type: 'kv.delete', key: bytes('missing') }),
    signed(k[14]!, 1n, transfer(seedKey(300), 3n)), // to an account never seen
  ];
  // Too early at first (bad-nonce, located there), valid once the sender's tx before it ran.
  const early = signed(k[15]!, 2n, transfer(recipient, 2n));
  const third: Uint8Array[] = [early];
  // Each sender's next nonce after the first two blocks (failed payloads advance it too).
  const next = [2n, 2n, 2n, 3n, 3n, 2n, 1n, 2n, 1n, 1n, 2n, 2n, 2n, 2n, 2n];
  for (let i = 0; i < k.length; i++) {
    const nonce = next[i] ?? 1n;
    third.push(
      signed(k[i]!, nonce, transfer(i % 3 === 0 ? k[(i + 1) % k.length]! : recipient, BigInt(i + 1))),
    );
    if (i === 15) third.push(early);
  }
  return [
    { txs: first, ts: 1_000n },
    { txs: second, ts: 900n }, // earlier than its parent: the block keeps the parent's time
    { txs: third, ts: 2_000n },
    { txs: [], ts: 3_000n },
    // More failed txs that may repeat an earlier tx's hash than the store compares one by
    // one: 18 distinct malformed ones, a tx twice and a replay of block 1's.
    {
      txs: [...Array.from({ length: 18 }, (_, i) => Uint8Array.of(9, i)), twice, twice, first[1]!],
      ts: 4_000n,
    },
  ];
}

/** SHA-256 over every key and value in the database, in key order, each length-prefixed. */
async function databaseDigest(dir: string): Promise<{ digest: string; entries: number }> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const h = crypto.createHash('sha256');
    const len = Buffer.alloc(4);
    let entries = 0;
    for await (const [key, value] of db.iterator()) {
      for (const part of [key, value]) {
        len.writeUInt32BE(part.length);
        h.update(len);
        h.update(part);
      }
      entries++;
    }
    return { digest: h.digest('hex'), entries };
  } finally {
    await db.close();
  }
}

describe('ledger block write bytes', () => {
  it('writes exactly the pinned keys and values for a fixed chain of blocks', async () => {
    const t = tempDir('write-bytes');
    try {
      const store = await LedgerStore.open(t.dir, {
        genesisHash,
        genesisAccounts,
        genesisTimeMs: 500n,
        sync: false,
        certWriteDelayMs: 60_000, // certificates reach disk only inside block batches
      });
      const exec = new Executor({ store, chainId: CHAIN });
      const chain = blocks();
      const codes: string[][] = [];
      for (let o = 0; o < chain.length; o++) {
        const { txs, ts } = chain[o]!;
        const meta = o === 2 ? [{ name: 'view', value: bytes('v7') }] : undefined;
        const block = await exec.executeBatch({
          order: BigInt(o),
          view: 3n,
          proposer: o % 3,
          batch: encodeBatch({ timestampMs: ts, txs }),
          ...(meta !== undefined ? { meta } : {}),
        });
        codes.push(block.results.map((r) => (r.ok ? 'ok' : r.code)));
        const height = block.header.height;
        // Each block's certificate is put before the next block, which carries and writes it.
        const sig = signCommit(height, blockHash(block.header), 0, validator.secretKey);
        await store.putCommitCertificate({ height, blockHash: blockHash(block.header), signatures: [sig] });
      }
      await store.close();
      // The chain exercises what the comments in blocks() say it does.
      assert.deepEqual(codes[1], [
        'bad-nonce',
        'ok',
        'bad-nonce',
        'insufficient-funds',
        'malformed',
        'wrong-chain',
        'bad-signature',
        'ok',
        'cas-mismatch',
        'ok',
        'ok',
        'ok',
        'not-found',
        'ok',
      ]);
      assert.deepEqual(codes[4], [...Array(18).fill('malformed'), 'ok', 'bad-nonce', 'bad-nonce']);
      assert.deepEqual(codes[2]![0], 'bad-nonce');
      assert.ok(codes[2]!.slice(1).every((c) => c === 'ok'));
      const got = await databaseDigest(t.dir);
      assert.equal(
        got.digest,
        DB_DIGEST_PINNED,
        `database after ${chain.length} blocks (${got.entries} entries) differs from the pinned bytes`,
      );
    } finally {
      t.cleanup();
    }
  });
});
