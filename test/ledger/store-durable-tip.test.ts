// The store's two tips over real LevelDB: latestTip() moves as soon as a block is staged
// (so the executor can build the next block on it), latestDurableTip() only once the block's
// batch is on disk. GET /v1/status reports the durable one (node/validator.ts status()),
// because a staged block can still be lost to a crash; test/api/status-durable.test.ts
// checks that end to end.
import assert from 'node:assert/strict';
import { type Block, blockHash, checkBlockBody, resultsHash } from '../../ledger/block.js';
import { sha256 } from '../../ledger/keys.js';
import { merkleRoot } from '../../ledger/merkle.js';
import { type BlockWrite, LedgerStore, type Tip } from '../../ledger/store.js';
import { bytes, CHAIN, tempDir } from './helpers.js';

const genesisHash = sha256(bytes('durable tip test genesis'));

/** The empty block on top of `tip` (what the executor makes of an empty batch). */
function emptyBlockOn(tip: Tip): BlockWrite {
  const block: Block = {
    header: {
      chainId: CHAIN,
      height: tip.height + 1n,
      prevHash: tip.hash,
      txRoot: merkleRoot([]),
      resultsHash: resultsHash([]),
      stateDigest: tip.stateDigest,
      timestampMs: tip.timestampMs + 1n,
      view: 0n,
      order: tip.height,
      proposer: 0,
      txCount: 0,
    },
    txs: [],
    results: [],
    parentCommit: null,
  };
  assert.ok(checkBlockBody(block).ok);
  return {
    block,
    hash: blockHash(block.header),
    txHashes: [],
    txAccounts: [],
    accountWrites: [],
    kvLog: [],
  };
}

describe('ledger/store durable tip', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir('durable');
  });
  afterEach(() => t.cleanup());

  const open = () => LedgerStore.open(t.dir, { genesisHash, genesisTimeMs: 500n, sync: true });

  it('keeps the durable tip on the last written block while the next one is staged but not on disk', async () => {
    const store = await open();
    try {
      const genesis = store.latestDurableTip();
      assert.equal(genesis.height, 0n);
      const w = emptyBlockOn(store.latestTip());
      const written = store.writeBlock(w);
      // Staged: reads and the executor see block 1 at once; its LevelDB batch is still in flight.
      assert.equal(store.latestHeight(), 1n);
      assert.deepEqual(store.latestTip().hash, w.hash);
      assert.deepEqual(store.latestDurableTip(), genesis);
      assert.equal(store.durableHeight(), 0n);
      await written;
      assert.equal(store.durableHeight(), 1n);
      assert.deepEqual(store.latestDurableTip(), store.latestTip());
      assert.deepEqual(store.latestDurableTip().hash, w.hash);
    } finally {
      await store.close();
    }
  });

  it('moves the durable tip one block at a time, in order, as queued writes reach disk', async () => {
    const store = await open();
    const hashes: Uint8Array[] = [];
    try {
      const seen: { height: bigint; durable: Tip }[] = [];
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 5; i++) {
        const w = emptyBlockOn(store.latestTip());
        hashes.push(w.hash);
        const done = store.writeBlock(w);
        writes.push(
          done.then(
            () => void seen.push({ height: w.block.header.height, durable: store.latestDurableTip() }),
          ),
        );
      }
      assert.equal(store.latestHeight(), 5n, 'all five staged');
      assert.equal(store.durableHeight(), 0n, 'none on disk yet');
      await Promise.all(writes);
      assert.deepEqual(
        seen.map((s) => s.height),
        [1n, 2n, 3n, 4n, 5n],
      );
      for (const [i, s] of seen.entries()) {
        // When block i's write resolves the durable tip is exactly block i: never a later staged one.
        assert.equal(s.durable.height, s.height);
        assert.deepEqual(s.durable.hash, hashes[i]);
      }
    } finally {
      await store.close();
    }
    // What the durable tip promised is what the disk holds.
    const again = await open();
    try {
      assert.equal(again.latestDurableTip().height, 5n);
      assert.deepEqual(again.latestDurableTip().hash, hashes[4]);
      assert.deepEqual(again.latestDurableTip(), again.latestTip());
    } finally {
      await again.close();
    }
  });
});
