import assert from 'node:assert/strict';
import { encodeBatch } from '../../ledger/batch.js';
import { Executor } from '../../ledger/executor.js';
import { sha256 } from '../../ledger/keys.js';
import { LedgerStore } from '../../ledger/store.js';
import { bytes, CHAIN, seedKey, signed, tempDir, transfer } from './helpers.js';

const a = seedKey(0);
const b = seedKey(1);

describe('ledger/executor', () => {
  it('keeps a block’s txs intact when the caller changes its batch bytes afterwards', async () => {
    const t = tempDir('executor-copy');
    const store = await LedgerStore.open(t.dir, {
      genesisHash: sha256(bytes('executor copy genesis')),
      genesisAccounts: [{ address: a.publicKey, balance: 100n }],
      sync: false,
    });
    try {
      const tx = signed(a, 1n, transfer(b, 5n));
      const batch = encodeBatch({ timestampMs: 1n, txs: [tx] });
      const exec = new Executor({ store, chainId: CHAIN, signatureVerified: () => true });
      const started = exec.executeBatchDetailed({ order: 0n, view: 0n, proposer: 0, batch });
      batch.fill(0); // a transport may reuse the buffer a batch was delivered in
      const { block } = await started.executed;
      assert.deepEqual(block.txs, [tx]);
      assert.deepEqual(block.results, [{ ok: true }]);
      assert.deepEqual((await store.getBlock(1n))?.txs, [tx]);
    } finally {
      await store.close();
      t.cleanup();
    }
  });
});
