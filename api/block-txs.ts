// What a tx lookup needs from the block holding the tx, kept per block so that
// GET /v1/txs/:hash costs one LevelDB point lookup (tx hash -> height, index) plus an
// in-memory read, instead of reading and decoding the whole block (about 50 KB for 100
// txs) on every request. Blocks are immutable once written, so an entry never goes stale.
//
// Packed: the block's encoded txs in one buffer with offsets, and its Merkle tree in
// another (api/proofs.ts), so a cached block is a handful of heap objects however many
// txs it has. Results share one object for the common `ok`.
import { type Block, blockHash, type TxResult } from '../ledger/block.js';
import { toHex } from '../ledger/codec/binary.js';
import { txHash } from '../ledger/tx.js';
import { buildTree, type TxTree, treeBytes } from './proofs.js';

const OK: TxResult = Object.freeze({ ok: true as const });

export class BlockTxs {
  readonly height: bigint;
  /** Block hash and tx root, hex. */
  readonly hash: string;
  readonly txRoot: string;
  readonly tree: TxTree;
  /**
   * A Buffer (off-heap), not a Uint8Array: decodeTx over a Buffer's subarray reads its byte
   * fields as views of these bytes (Buffer#slice) instead of copies. A copy of 32 or 64
   * bytes lives on the JS heap, and toHex (ledger/codec/binary.ts) reads `.buffer`, which
   * moves it off the heap into an ArrayBuffer of its own: three per rendered transfer, each
   * one more entry for every scavenge to sweep.
   */
  private readonly txBytes: Buffer;
  /** starts[i] .. starts[i + 1] is tx i in txBytes. */
  private readonly starts: Uint32Array;
  private readonly results: TxResult[];

  constructor(block: Block) {
    const h = block.header;
    this.height = h.height;
    this.hash = toHex(blockHash(h));
    this.txRoot = toHex(h.txRoot);
    const n = block.txs.length;
    this.starts = new Uint32Array(n + 1);
    let size = 0;
    for (let i = 0; i < n; i++) {
      this.starts[i] = size;
      size += block.txs[i]!.length;
    }
    this.starts[n] = size;
    this.txBytes = Buffer.allocUnsafeSlow(size);
    for (let i = 0; i < n; i++) this.txBytes.set(block.txs[i]!, this.starts[i]!);
    this.results = block.results.map((r) => (r.ok ? OK : r));
    this.tree = buildTree(block.txs.map(txHash), h.txRoot);
  }

  get count(): number {
    return this.starts.length - 1;
  }

  /** The encoded tx at `index` (a view into the cached buffer: do not modify). */
  tx(index: number): Uint8Array | null {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) return null;
    return this.txBytes.subarray(this.starts[index]!, this.starts[index + 1]!);
  }

  result(index: number): TxResult | null {
    return this.results[index] ?? null;
  }

  /** Approximate memory held, for the cache's bound. */
  get bytes(): number {
    return 256 + this.txBytes.length + this.starts.byteLength + treeBytes(this.tree) + 16 * this.count;
  }
}
