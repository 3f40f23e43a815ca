// Which of the blocks a peer sent during state transfer f+1 validators vouch for. Blocks
// arrive from one peer, which may be Byzantine: re-executing a block only shows that its
// header matches its own txs, so a made-up block (an empty batch, say) re-executes
// cleanly. Only a stable checkpoint or a commit certificate for that very height and hash
// makes a block part of the chain; everything after the highest such block is dropped.
import { type Block, type CommitCertificate, certifies } from '../ledger/block.js';
import { bytesEqual } from '../ledger/codec/binary.js';

export interface TransferEvidence {
  /** The received blocks, already checked to extend the local tip as a hash chain. */
  blocks: readonly Block[];
  /** blockHash of each block, same order. */
  hashes: readonly Uint8Array[];
  /** The certificate the peer sent with each block (null: none, or it did not decode). */
  certs: readonly (CommitCertificate | null)[];
  /** The stable checkpoint this replica's own consensus core proved (trusted), if any. */
  checkpoint: { order: bigint; blockHash: Uint8Array } | null;
  validatorPublicKeys: Uint8Array[];
  f: number;
}

/** Index of the highest vouched-for block, or -1 when none is (retry later). */
export function highestVouched(e: TransferEvidence): number {
  for (let i = e.blocks.length - 1; i >= 0; i--) {
    const b = e.blocks[i] as Block;
    const hash = e.hashes[i] as Uint8Array;
    const height = b.header.height;
    const cp = e.checkpoint;
    if (cp && b.header.order === cp.order && bytesEqual(cp.blockHash, hash)) return i;
    const c = e.certs[i];
    if (c && certifies(c, height, hash, e.validatorPublicKeys, e.f)) return i;
    // The next block carries this one's certificate as its parentCommit.
    const parent = e.blocks[i + 1]?.parentCommit;
    if (parent && certifies(parent, height, hash, e.validatorPublicKeys, e.f)) return i;
  }
  return -1;
}
