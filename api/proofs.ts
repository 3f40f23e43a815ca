// Merkle inclusion proofs served per request. ledger/merkle.ts's merkleProof rebuilds
// the whole tree for every proof (2n hashes); the API keeps each block's tree (cached per
// block, api/block-txs.ts) and reads a proof off it in O(log n). The tree follows
// ledger/merkle.ts exactly (RFC 6962: 0x00 leaf prefix, 0x01 node prefix, odd node
// promoted); buildTree checks its root against the header's txRoot and falls back to the
// ledger's own function if they ever disagree.
//
// All node hashes of a tree sit in one buffer: a cache of thousands of trees then holds a
// few objects per block instead of one Uint8Array per hash, which kept the garbage
// collector's old-space marking (and its pauses) proportional to the cache size.
import { bytesEqual } from '../ledger/codec/binary.js';
import { sha256Parts } from '../ledger/keys.js';
import { type MerkleProof, merkleLeafHash, merkleProof } from '../ledger/merkle.js';

const NODE_PREFIX = Uint8Array.of(1);
const H = 32;

export interface PackedLevels {
  /** Every node hash, level by level: leaf hashes first, the root last. */
  bytes: Uint8Array;
  /** starts[l] = index (in hashes) of level l's first node; one extra entry marks the end. */
  starts: number[];
}

export interface TxTree {
  leafCount: number;
  levels: PackedLevels | null;
  /** The tx hashes, kept only when the fallback is in use (levels null). */
  leaves: Uint8Array[] | null;
}

export function buildTree(txHashes: Uint8Array[], txRoot: Uint8Array): TxTree {
  const n = txHashes.length;
  if (n === 0) return { leafCount: 0, levels: null, leaves: txHashes };
  let total = 0;
  for (let c = n; ; c = Math.ceil(c / 2)) {
    total += c;
    if (c === 1) break;
  }
  const bytes = new Uint8Array(total * H);
  const starts = [0];
  for (let i = 0; i < n; i++) bytes.set(merkleLeafHash(txHashes[i]!), i * H);
  let start = 0;
  for (let count = n; count > 1; ) {
    const next = start + count;
    const at = (j: number) => bytes.subarray((start + j) * H, (start + j + 1) * H);
    let k = 0;
    for (let j = 0; j + 1 < count; j += 2, k++) {
      bytes.set(sha256Parts(NODE_PREFIX, at(j), at(j + 1)), (next + k) * H);
    }
    if (count % 2 === 1) {
      bytes.copyWithin((next + k) * H, (start + count - 1) * H, (start + count) * H);
      k++;
    }
    starts.push(next);
    start = next;
    count = k;
  }
  starts.push(total);
  const root = bytes.subarray((total - 1) * H);
  return bytesEqual(root, txRoot)
    ? { leafCount: n, levels: { bytes, starts }, leaves: null }
    : { leafCount: n, levels: null, leaves: txHashes };
}

/** Bytes the tree holds (for cache weights). */
export const treeBytes = (t: TxTree): number =>
  t.levels !== null ? t.levels.bytes.length : (t.leaves?.length ?? 0) * H;

export function proofOf(tree: TxTree, index: number): MerkleProof {
  if (tree.levels === null) return merkleProof(tree.leaves ?? [], index);
  const { bytes, starts } = tree.levels;
  const siblings: Uint8Array[] = [];
  let i = index;
  for (let l = 0; l + 2 < starts.length; l++) {
    const sib = i ^ 1;
    if (sib < starts[l + 1]! - starts[l]!) {
      const at = (starts[l]! + sib) * H;
      siblings.push(bytes.subarray(at, at + H));
    }
    i >>= 1;
  }
  return { index, leafCount: tree.leafCount, siblings };
}
