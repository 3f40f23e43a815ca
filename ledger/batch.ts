// The opaque payload consensus orders: one batch becomes one block. Consensus never looks
// inside; the executor decodes it with the same limits the leader used to cut it.
import { DecodeError, decodeWith, type Result, Writer } from './codec/binary.js';
import { TX_BYTES_MAX } from './tx.js';

export interface Batch {
  /** Leader's clock when it cut the batch; the executor clamps it to be monotonic. */
  timestampMs: bigint;
  /** Encoded transactions, in order. */
  txs: Uint8Array[];
}

export interface BatchLimits {
  txsMax: number;
  bytesMax: number;
}

export const BATCH_VERSION = 1;
/** Decoder defaults; genesis consensus parameters usually set tighter ones. */
export const BATCH_LIMITS_DEFAULT: BatchLimits = { txsMax: 10_000, bytesMax: 16 * 1024 * 1024 };

export function encodeBatch(b: Batch): Uint8Array {
  let size = 13;
  for (const tx of b.txs) size += 4 + tx.length;
  const w = new Writer(size);
  w.u8(BATCH_VERSION).u64(b.timestampMs).u32(b.txs.length);
  for (const tx of b.txs) {
    if (tx.length > TX_BYTES_MAX) throw new RangeError(`tx is ${tx.length} bytes, limit ${TX_BYTES_MAX}`);
    w.bytes(tx);
  }
  return w.finish();
}

export interface DecodeBatchOptions {
  /**
   * Each tx as a view into `bytes` instead of a copy of its own: for a caller that owns
   * `bytes` and never changes them (the executor decodes a private copy of the batch). A
   * block's txs then share one buffer: a copy per tx was an ArrayBuffer per tx, each one
   * allocated outside the heap and swept by the garbage collector.
   */
  txViews?: boolean;
}

/** Never throws. The byte limit is checked before anything is read. */
export function decodeBatch(
  bytes: Uint8Array,
  limits: BatchLimits = BATCH_LIMITS_DEFAULT,
  opts: DecodeBatchOptions = {},
): Result<Batch> {
  return decodeWith(
    bytes,
    limits.bytesMax,
    (r) => {
      const version = r.u8('version');
      if (version !== BATCH_VERSION)
        throw new DecodeError('bad-version', `batch version ${version}`, 'version');
      const timestampMs = r.u64('timestampMs');
      const n = r.count(limits.txsMax, 'txs.count');
      // Each tx costs at least its 4-byte length prefix: refuse a claimed count the input cannot hold
      // before building anything for it.
      if (n * 4 > r.remaining)
        throw new DecodeError('truncated', `${n} txs cannot fit in ${r.remaining} bytes`, 'txs');
      const txs: Uint8Array[] = [];
      for (let i = 0; i < n; i++) txs.push(r.bytes(TX_BYTES_MAX, `txs[${i}]`));
      return { timestampMs, txs };
    },
    // With txViews the txs (the only byte fields) are views into `bytes`, not copies.
    opts.txViews === true ? { views: true } : undefined,
  );
}

/**
 * The proposed timestamp alone, without decoding the txs: followers check it against
 * their clock on every PREPARE, so it must cost nothing. Null when the bytes are not a
 * batch of this version (the executor turns those into empty blocks).
 */
export function peekBatchTimestamp(bytes: Uint8Array): bigint | null {
  if (bytes.length < 13 || bytes[0] !== BATCH_VERSION) return null;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readBigUInt64BE(1);
}
