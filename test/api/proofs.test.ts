import assert from 'node:assert/strict';
import { buildTree, proofOf } from '../../api/proofs.js';
import { sha256 } from '../../ledger/keys.js';
import { merkleProof, merkleRoot, verifyMerkleProof } from '../../ledger/merkle.js';

describe('cached Merkle proofs', () => {
  it('match the ledger proofs and verify for every leaf of trees of 1..40 leaves', () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, (_, i) => sha256(Uint8Array.of(n, i)));
      const root = merkleRoot(leaves);
      const tree = buildTree(leaves, root);
      assert.ok(tree.levels, `levels kept for n=${n}`);
      for (let i = 0; i < n; i++) {
        const p = proofOf(tree, i);
        assert.deepEqual(p, merkleProof(leaves, i));
        assert.equal(verifyMerkleProof(leaves[i]!, p, root), true);
      }
    }
  });

  it('fall back to the ledger function when the root does not match the header', () => {
    const leaves = [1, 2, 3].map((i) => sha256(Uint8Array.of(i)));
    const tree = buildTree(leaves, new Uint8Array(32));
    assert.equal(tree.levels, null);
    assert.deepEqual(proofOf(tree, 2), merkleProof(leaves, 2));
  });
});

describe('Lru', () => {
  it('evicts the least recently used entry by count and by weight', async () => {
    const { Lru } = await import('../../api/lru.js');
    const byCount = new Lru<number, string>(2);
    byCount.set(1, 'a');
    byCount.set(2, 'b');
    byCount.get(1);
    byCount.set(3, 'c');
    assert.deepEqual([byCount.get(1), byCount.get(2), byCount.get(3)], ['a', undefined, 'c']);
    const byWeight = new Lru<number, string>(100, 5, (v) => v.length);
    byWeight.set(1, 'aaa');
    byWeight.set(2, 'bb');
    byWeight.set(3, 'cc');
    assert.equal(byWeight.get(1), undefined);
    assert.equal(byWeight.weight, 4);
    byWeight.set(4, 'toolong');
    assert.equal(byWeight.get(4), undefined, 'an entry heavier than the bound is not kept');
    byWeight.set(2, 'b');
    assert.equal(byWeight.weight, 3);
  });
});
