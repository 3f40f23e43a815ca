import assert from 'node:assert/strict';
import { BlockTxs } from '../../api/block-txs.js';
import { proofOf } from '../../api/proofs.js';
import { decodeStored } from '../../api/views.js';
import { blockHash } from '../../ledger/block.js';
import { toHex } from '../../ledger/codec/binary.js';
import { verifyMerkleProof } from '../../ledger/merkle.js';
import { txHash } from '../../ledger/tx.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

describe('BlockTxs', () => {
  let node: SingleNode;
  before(async () => {
    node = await startSingleNode({ accounts: 3 });
  });
  after(async () => {
    await node.close();
  });

  it('holds every tx and result of a real block, with proofs that verify against its txRoot', async () => {
    const to = node.accountKeys[2]!.publicKey;
    const txs = Array.from({ length: 13 }, (_, i) =>
      node.signedTx(i % 2, { type: 'transfer', to, amount: 1n }),
    );
    // A replay of the first tx fails (bad nonce): a failed result must be kept as it is.
    txs.push(txs[0]!);
    const block = await node.appendBlock(txs);
    const b = new BlockTxs(block);
    assert.equal(b.height, block.header.height);
    assert.equal(b.hash, toHex(blockHash(block.header)));
    assert.equal(b.txRoot, toHex(block.header.txRoot));
    assert.equal(b.count, txs.length);
    assert.equal(block.results[txs.length - 1]!.ok, false);
    for (let i = 0; i < txs.length; i++) {
      assert.equal(toHex(b.tx(i)!), toHex(txs[i]!));
      assert.deepEqual(b.result(i), block.results[i]);
      assert.equal(
        verifyMerkleProof(txHash(txs[i]!), proofOf(b.tree, i), block.header.txRoot),
        true,
        `tx ${i}`,
      );
    }
    assert.ok(b.bytes > txs.reduce((n, t) => n + t.length, 0));
  });

  it('decodes a held tx into fields that share its bytes rather than small heap copies', async () => {
    const to = node.accountKeys[2]!.publicKey;
    const tx = node.signedTx(0, { type: 'transfer', to, amount: 5n });
    const b = new BlockTxs(await node.appendBlock([tx]));
    const decoded = decodeStored(b.tx(0)!);
    assert.ok(decoded !== null && decoded.payload.type === 'transfer');
    assert.equal(toHex(decoded.from), toHex(node.accountKeys[0]!.publicKey));
    assert.equal(toHex(decoded.payload.to), toHex(to));
    // One off-heap buffer for the block: toHex of a field then allocates no ArrayBuffer of its own.
    assert.equal(decoded.signature.buffer, b.tx(0)!.buffer);
    assert.equal(decoded.from.buffer, b.tx(0)!.buffer);
  });

  it('answers null for an index outside the block', async () => {
    const block = await node.appendBlock([]);
    const b = new BlockTxs(block);
    assert.equal(b.count, 0);
    for (const i of [-1, 0, 1, 0.5]) {
      assert.equal(b.tx(i), null);
      assert.equal(b.result(i), null);
    }
  });
});
