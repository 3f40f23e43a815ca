// Merkle tree over tx hashes, RFC 6962 / RFC 9162 style: leaves and inner nodes are hashed
// with different one-byte prefixes (so an inner node can never be passed off as a leaf), and
// an odd node is promoted unchanged to the next level, which yields exactly RFC 6962's
// left-balanced tree. The empty tree's root is SHA-256 of the empty string.
import crypto from 'node:crypto';
import { bytesEqual } from './codec/binary.js';
import { HASH_BYTES, sha256 } from './keys.js';

const LEAF_PREFIX = Uint8Array.of(0);
const NODE_PREFIX = Uint8Array.of(1);
/** Bound on proof length accepted by the verifier: trees of up to 2^64 leaves. */
const PROOF_SIBLINGS_MAX = 64;

export interface MerkleProof {
  index: number;
  leafCount: number;
  /** Sibling hashes from the leaf level upward (RFC 9162 inclusion path). */
  siblings: Uint8Array[];
}

// Leaves and nodes are hashed from one reused scratch buffer each (a tree is built
// synchronously, so nothing else writes them meanwhile). Leaves are tx hashes, 32 bytes in
// every block; a leaf of another size gets a buffer of its own.
const leafScratch = Buffer.alloc(1 + HASH_BYTES);
const nodeScratch = Buffer.alloc(1 + 2 * HASH_BYTES);
leafScratch[0] = LEAF_PREFIX[0]!;
nodeScratch[0] = NODE_PREFIX[0]!;

export function merkleLeafHash(leaf: Uint8Array): Uint8Array {
  if (leaf.length !== HASH_BYTES) {
    const buf = new Uint8Array(1 + leaf.length);
    buf[0] = LEAF_PREFIX[0]!;
    buf.set(leaf, 1);
    return sha256(buf);
  }
  leafScratch.set(leaf, 1);
  return sha256(leafScratch);
}

function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  // Inner nodes are always 32-byte hashes; proofs from outside are length-checked before this.
  if (l.length !== HASH_BYTES || r.length !== HASH_BYTES) throw new Error('merkle node child is not a hash');
  nodeScratch.set(l, 1);
  nodeScratch.set(r, 1 + HASH_BYTES);
  return sha256(nodeScratch);
}

function nextLevel(level: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < level.length; i += 2) out.push(nodeHash(level[i]!, level[i + 1]!));
  if (level.length % 2 === 1) out.push(level[level.length - 1]!);
  return out;
}

/**
 * The root alone needs no hash below it as bytes: each level is kept as SHA-256's 'binary'
 * (latin1) output, a 32-char string written straight into the scratch buffer for the next
 * hash, and only the root becomes bytes. Bytes for every leaf and node (a pooled Buffer and
 * a copy out of it per hash, two hashes per tx) were most of a block's Merkle cost.
 */
export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level: string[] = new Array<string>(leaves.length);
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]!;
    if (leaf.length === HASH_BYTES) {
      leafScratch.set(leaf, 1);
      level[i] = crypto.hash('sha256', leafScratch, 'binary');
    } else level[i] = Buffer.from(merkleLeafHash(leaf)).toString('latin1');
  }
  while (level.length > 1) {
    const next = new Array<string>((level.length + 1) >>> 1);
    let j = 0;
    for (let i = 0; i + 1 < level.length; i += 2) {
      nodeScratch.write(level[i]!, 1, HASH_BYTES, 'latin1');
      nodeScratch.write(level[i + 1]!, 1 + HASH_BYTES, HASH_BYTES, 'latin1');
      next[j++] = crypto.hash('sha256', nodeScratch, 'binary');
    }
    if (level.length % 2 === 1) next[j] = level[level.length - 1]!;
    level = next;
  }
  return new Uint8Array(Buffer.from(level[0]!, 'latin1'));
}

export function merkleProof(leaves: Uint8Array[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`leaf index ${index} out of range 0..${leaves.length - 1}`);
  }
  const siblings: Uint8Array[] = [];
  let level = leaves.map(merkleLeafHash);
  let i = index;
  while (level.length > 1) {
    const sib = i ^ 1;
    // A promoted odd node has no sibling at this level.
    if (sib < level.length) siblings.push(level[sib]!);
    level = nextLevel(level);
    i >>= 1;
  }
  return { index, leafCount: leaves.length, siblings };
}

/** RFC 9162 section 2.1.3.2 verification. Never throws. */
export function verifyMerkleProof(leaf: Uint8Array, proof: MerkleProof, root: Uint8Array): boolean {
  const { index, leafCount, siblings } = proof;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(leafCount)) return false;
  if (index < 0 || index >= leafCount || !Array.isArray(siblings) || siblings.length > PROOF_SIBLINGS_MAX) {
    return false;
  }
  let fn = BigInt(index);
  let sn = BigInt(leafCount - 1);
  let r = merkleLeafHash(leaf);
  for (const p of siblings) {
    if (!(p instanceof Uint8Array) || p.length !== 32 || sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(r, root);
}
