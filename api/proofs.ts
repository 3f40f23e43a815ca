// Merkle inclusion proofs served per request. ledger/merkle.ts's merkleProof rebuilds
// the whole tree for every proof (2n hashes); the API keeps each block's tree levels
// (cached per block by the handlers) and reads a proof off them in O(log n). The
// levels follow ledger/merkle.ts exactly (RFC 6962: 0x00 leaf prefix, 0x01 node prefix,
// odd node promoted); buildTree checks its root against the header's txRoot and
// falls back to the ledger's own function if they ever disagree.
import { bytesEqual } from '../ledger/codec/binary.js';
import { sha256Parts } from '../ledger/keys.js';
import { type MerkleProof, merkleLeafHash, merkleProof } from '../ledger/merkle.js';

const NODE_PREFIX = Uint8Array.of(1);

export interface TxTree {
  leaves: Uint8Array[];
  /** levels[0] = leaf hashes, last = [root]; null when the fallback is in use. */
  levels: Uint8Array[][] | null;
}

export function buildTree(txHashes: Uint8Array[], txRoot: Uint8Array): TxTree {
  if (txHashes.length === 0) return { leaves: txHashes, levels: null };
  const levels: Uint8Array[][] = [txHashes.map(merkleLeafHash)];
  for (let level = levels[0]!; level.length > 1; ) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2)
      next.push(sha256Parts(NODE_PREFIX, level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    levels.push(next);
    level = next;
  }
  const root = levels[levels.length - 1]![0]!;
  return { leaves: txHashes, levels: bytesEqual(root, txRoot) ? levels : null };
}

export function proofOf(tree: TxTree, index: number): MerkleProof {
  if (tree.levels === null) return merkleProof(tree.leaves, index);
  const siblings: Uint8Array[] = [];
  let i = index;
  for (let l = 0; l < tree.levels.length - 1; l++) {
    const level = tree.levels[l]!;
    const sib = i ^ 1;
    if (sib < level.length) siblings.push(level[sib]!);
    i >>= 1;
  }
  return { index, leafCount: tree.leaves.length, siblings };
}
