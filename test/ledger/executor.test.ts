import assert from 'node:assert/strict';
import { encodeBatch } from '../../ledger/batch.js';
import { Executor } from '../../ledger/executor.js';
import { sha256 } from '../../ledger/keys.js';
import { LedgerStore } from '../../ledger/store.js';
import { txHashHex } from '../../ledger/tx.js';
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

  it('asks the node about each signature with the batch’s voucher, and verifies what it does not know', async () => {
    const t = tempDir('executor-vouch');
    const store = await LedgerStore.open(t.dir, {
      genesisHash: sha256(bytes('executor vouch genesis')),
      genesisAccounts: [{ address: a.publicKey, balance: 100n }],
      sync: false,
    });
    try {
      // Signed by b but claiming to be from a: only skipping verification lets it through.
      const forged = signed(a, 1n, transfer(b, 5n));
      const other = signed(b, 1n, transfer(a, 1n));
      forged.set(other.subarray(other.length - 64), forged.length - 64);
      const asked: [string, number | undefined][] = [];
      const exec = new Executor({
        store,
        chainId: CHAIN,
        signatureVerified: (h, vouchedBy) => {
          asked.push([h, vouchedBy]);
          return vouchedBy === 1;
        },
      });
      const batch = (): Uint8Array => encodeBatch({ timestampMs: 1n, txs: [forged] });
      const plain = await exec.executeBatchDetailed({ order: 0n, view: 0n, proposer: 0, batch: batch() })
        .executed;
      assert.equal(plain.block.results[0]?.ok, false, 'no voucher: verified here, and it fails');
      const vouched = await exec.executeBatchDetailed({
        order: 1n,
        view: 0n,
        proposer: 0,
        batch: batch(),
        vouchedBy: 1,
      }).executed;
      assert.deepEqual(vouched.block.results, [{ ok: true }], 'the node said two others vouched');
      assert.deepEqual(asked, [
        [txHashHex(forged), undefined],
        [txHashHex(forged), 1],
      ]);
    } finally {
      await store.close();
      t.cleanup();
    }
  });
});
