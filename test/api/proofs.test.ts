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
