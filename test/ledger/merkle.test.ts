import assert from 'node:assert/strict';
import { sha256, sha256Parts } from '../../ledger/keys.js';
import { merkleLeafHash, merkleProof, merkleRoot, verifyMerkleProof } from '../../ledger/merkle.js';

// Reference: RFC 6962 section 2.1, written recursively and independently of merkle.ts.
function mth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha256(new Uint8Array(0));
  if (d.length === 1) return sha256Parts(Uint8Array.of(0), d[0]!);
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return sha256Parts(Uint8Array.of(1), mth(d.slice(0, k)), mth(d.slice(k)));
}

const leaves = (n: number) => Array.from({ length: n }, (_, i) => sha256(Uint8Array.of(i, i >> 8)));

describe('ledger/merkle', () => {
  it('computes the RFC 6962 root for every tree size from 0 to 40', () => {
    for (let n = 0; n <= 40; n++) assert.deepEqual(merkleRoot(leaves(n)), mth(leaves(n)), `size ${n}`);
  });

  it('proves inclusion of every leaf of every tree size from 1 to 33', () => {
    for (let n = 1; n <= 33; n++) {
      const ls = leaves(n);
      const root = merkleRoot(ls);
      for (let i = 0; i < n; i++) {
        const p = merkleProof(ls, i);
        assert.ok(verifyMerkleProof(ls[i]!, p, root), `size ${n} index ${i}`);
        assert.ok(p.siblings.length <= Math.ceil(Math.log2(n)));
      }
    }
  });

  it('rejects a proof for the wrong leaf, index, size, root or a tampered sibling', () => {
    const ls = leaves(13);
    const root = merkleRoot(ls);
    const p = merkleProof(ls, 6);
    assert.equal(verifyMerkleProof(ls[7]!, p, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, index: 7 }, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, leafCount: 8 }, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, leafCount: 6 }, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, p, merkleRoot(leaves(12))), false);
    const bad = p.siblings.map((s) => Uint8Array.from(s));
    bad[1]![0]! ^= 1;
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, siblings: bad }, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, siblings: p.siblings.slice(1) }, root), false);
    assert.equal(verifyMerkleProof(ls[6]!, { ...p, index: -1 }, root), false);
  });

  it('hashes leaves of any length as RFC 6962 does, not only 32-byte tx hashes', () => {
    for (const n of [0, 1, 31, 33, 64, 200]) {
      const leaf = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
      assert.deepEqual(merkleLeafHash(leaf), sha256Parts(Uint8Array.of(0), leaf), `length ${n}`);
      assert.deepEqual(merkleRoot([leaf, leaf]), mth([leaf, leaf]), `pair of length ${n}`);
    }
  });

  it('hands out hashes that later hashing does not change (the scratch buffers are not shared)', () => {
    const first = merkleRoot(leaves(5));
    const copy = Uint8Array.from(first);
    const leafHash = merkleLeafHash(leaves(1)[0]!);
    const leafCopy = Uint8Array.from(leafHash);
    merkleRoot(leaves(37));
    merkleLeafHash(leaves(2)[1]!);
    assert.deepEqual(first, copy);
    assert.deepEqual(leafHash, leafCopy);
  });

  it('distinguishes a leaf from an inner node (second-preimage resistance)', () => {
    const ls = leaves(2);
    const inner = sha256Parts(Uint8Array.of(0), ls[0]!);
    assert.notDeepEqual(merkleRoot([inner]), merkleRoot(ls));
  });
});
