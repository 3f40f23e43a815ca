// BASELINE for bench/block-write.ts only (delete with it): ledger/store.ts as of commit f39f70e,
// before the block write path was tuned, with imports of unchanged modules pointed at ledger/.
// The LevelDB ledger store. One LevelDB database, key spaces separated by a one-byte prefix:
//
//   'G'                                  genesis hash (written once, checked on every open)
//   'L'                                  tip: height u64 | block hash 32 | state digest 32 | timestamp u64
//   'B' height u64                       encoded block
//   'H' block hash 32                    height u64
//   'T' tx hash 32                       height u64 | index u32   (first occurrence of the tx)
//   'X' address 32 height u64 index u32  (empty)                  (txs of an account, for the explorer)
//   'A' address 32                       balance u64 | nonce u64
//   'K' kv key                           kv entry (state.ts encodeKvEntry)
//   'V' keyLen u16 key version u64       kv entry as of that version (history)
//   'C' height u64                       commit certificate of that block
//   'M' utf-8 name                       node metadata (consensus view, TrInX counters...)
//
// Every block is written with its state changes and the new tip in ONE db.batch, which
// LevelDB applies atomically (one write-ahead-log record), so a crash at any point leaves the
// store at a block boundary. State is served from a bounded in-memory cache that is written
// through per block; the executor loads a block's accounts and keys with one getMany.
import { ClassicLevel } from 'classic-level';
import type { Address } from '../../ledger/address.js';
import {
  type Block,
  type CommitCertificate,
  decodeBlock,
  decodeCommitCertificate,
  encodeBlock,
  encodeCommitCertificate,
  type TxResult,
} from '../../ledger/block.js';
import { bytesEqual, toHex } from '../../ledger/codec/binary.js';
import { txHash } from '../../ledger/tx.js';
import {
  type Account,
  encodeAccount,
  encodeKvEntry,
  genesisStateDigest,
  type KvEntry,
  type StateReader,
} from './state.js';

export type LedgerStoreErrorCode =
  | 'genesis-mismatch'
  | 'corrupt'
  | 'closed'
  | 'out-of-order'
  | 'write-failed';
export class LedgerStoreError extends Error {
  override readonly name = 'LedgerStoreError';
  constructor(
    readonly code: LedgerStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface LedgerStoreOptions {
  /** Hash of the genesis this data directory belongs to; a different one is refused. */
  genesisHash: Uint8Array;
  /** Initial balances, written when the directory is new. */
  genesisAccounts?: { address: Uint8Array; balance: bigint }[];
  /** Lower bound for block 1's timestamp. */
  genesisTimeMs?: bigint;
  /** fsync each block batch (default true): survives power loss, not only process crashes. */
  sync?: boolean;
  /** Bound on cached account and kv entries (default 500k). */
  stateCacheEntriesMax?: number;
  /** Bound on cached decoded blocks for reads (default 32). */
  blockCacheMax?: number;
  /** Bound on commit certificates kept in memory, the latest ones (default 64). */
  certCacheMax?: number;
  /**
   * How long a commit certificate waits for a block batch to carry it before it is written on
   * its own (default CERT_WRITE_DELAY_MS; 0 writes each one at once, as a separate put).
   */
  certWriteDelayMs?: number;
  /** LevelDB tuning passed to classic-level (defaults below). */
  leveldb?: { writeBufferSize?: number; compression?: boolean; cacheSize?: number };
}

/**
 * A larger memtable means fewer level-0 flushes and compactions per block; compression is
 * off because most of a block is signatures, hashes and keys, which do not compress.
 */
export const LEVELDB_DEFAULTS = {
  writeBufferSize: 32 * 1024 * 1024,
  compression: false,
  cacheSize: 32 * 1024 * 1024,
};

export interface Tip {
  height: bigint;
  hash: Uint8Array;
  stateDigest: Uint8Array;
  timestampMs: bigint;
}

export interface TxLocation {
  tx: Uint8Array;
  hash: Uint8Array;
  height: bigint;
  index: number;
  result: TxResult;
}

/** What the executor hands the store for one block. */
export interface BlockWrite {
  block: Block;
  hash: Uint8Array;
  txHashes: Uint8Array[];
  /** Addresses to index each tx under (sender, recipient), per tx; empty for unauthenticated txs. */
  txAccounts: Uint8Array[][];
  accountWrites: Iterable<{ address: Uint8Array; account: Account }>;
  /** Every kv write of the block, in execution order (history keeps each version). */
  kvLog: { key: Uint8Array; entry: KvEntry }[];
  /**
   * Metadata records written in the block's own atomic batch (putMetaBatch's rules: a name's
   * last record counts): the node's consensus state then becomes durable exactly when the
   * block does, with one fsync for both.
   */
  meta?: readonly MetaRecord[];
}

/** A named metadata record ('M' key space). */
export interface MetaRecord {
  name: string;
  value: Uint8Array;
}

/**
 * The last record of each name, smallest first. Keeping a name's last record makes the
 * order within a batch free, and the largest records go last: appending anything after a
 * large value in LevelDB's native batch measured ~1 ms of CPU per write here (a PREPARE
 * entry holds its whole batch).
 */
function lastPerNameBySize(records: readonly MetaRecord[]): [string, Uint8Array][] {
  const last = new Map<string, Uint8Array>();
  for (const r of records) {
    last.delete(r.name);
    last.set(r.name, r.value);
  }
  return [...last].sort((a, b) => a[1].length - b[1].length);
}

type ChainedBatchOf = ReturnType<ClassicLevel<Uint8Array, Uint8Array>['batch']>;

export const LIST_LIMIT_MAX = 1000;

/**
 * A certificate forms a millisecond or two after its block, and the next block's synced
 * batch writes it anyway (settleCertificates). A separate unsynced put per certificate cost
 * 0.25-0.35 ms of main-thread CPU per block at 50 tx/s, beside the next commit, for a write
 * that batch repeats. It is kept only for a chain that goes quiet (no next block soon), so a
 * process crash then loses at most this much of a certificate's life. 200 ms is far above the
 * interval between blocks at any load where that CPU matters, and short beside a restart.
 */
export const CERT_WRITE_DELAY_MS = 200;
const STATE_CACHE_DEFAULT = 500_000;

const P = {
  genesis: 0x47, // G
  tip: 0x4c, // L
  block: 0x42, // B
  hash: 0x48, // H
  tx: 0x54, // T
  acctTx: 0x58, // X
  account: 0x41, // A
  kv: 0x4b, // K
  kvHist: 0x56, // V
  cert: 0x43, // C
  meta: 0x4d, // M
} as const;

const u64be = (v: bigint): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v);
  return b;
};
const u32be = (v: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v);
  return b;
};
/** One allocation per key: a block writes a few keys per tx, and Buffer.concat made two. */
const key = (prefix: number, ...parts: Uint8Array[]): Buffer => {
  let n = 1;
  for (const p of parts) n += p.length;
  const b = Buffer.allocUnsafe(n);
  b[0] = prefix;
  let off = 1;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
};
/** LevelDB hands back Buffers; callers get plain Uint8Arrays (deepEqual-able, no Buffer API leaks). */
const plain = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const readU64 = (b: Uint8Array, off = 0): bigint =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64BE(off);
const readU32 = (b: Uint8Array, off = 0): number =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32BE(off);

function decodeAccount(b: Uint8Array): Account {
  if (b.length !== 16) throw new LedgerStoreError('corrupt', 'account record is not 16 bytes');
  return { balance: readU64(b, 0), nonce: readU64(b, 8) };
}

function decodeKvEntryRecord(b: Uint8Array): KvEntry {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  let off = 1;
  let value: Uint8Array | null = null;
  if (buf[0] === 1) {
    const n = buf.readUInt32BE(1);
    value = new Uint8Array(buf.subarray(5, 5 + n));
    off = 5 + n;
  } else if (buf[0] !== 0) throw new LedgerStoreError('corrupt', 'bad kv record');
  if (buf.length !== off + 48) throw new LedgerStoreError('corrupt', 'kv record length');
  return {
    value,
    version: buf.readBigUInt64BE(off),
    lastModifiedHeight: buf.readBigUInt64BE(off + 8),
    lastModifiedBy: new Uint8Array(buf.subarray(off + 16, off + 48)),
  };
}

function encodeTip(t: Tip): Buffer {
  return Buffer.concat([u64be(t.height), t.hash, t.stateDigest, u64be(t.timestampMs)]);
}
function decodeTip(b: Uint8Array): Tip {
  if (b.length !== 80) throw new LedgerStoreError('corrupt', 'tip record is not 80 bytes');
  return {
    height: readU64(b, 0),
    hash: Uint8Array.from(b.subarray(8, 40)),
    stateDigest: Uint8Array.from(b.subarray(40, 72)),
    timestampMs: readU64(b, 72),
  };
}

/** The key of a named metadata record. */
const metaKey = (name: string): Uint8Array => key(P.meta, Buffer.from(name, 'utf8'));

const kvHistKey = (k: Uint8Array, version: bigint): Buffer => {
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(k.length);
  return key(P.kvHist, len, k, u64be(version));
};

const EMPTY = new Uint8Array(0);
const clampLimit = (limit: number): number => Math.max(1, Math.min(LIST_LIMIT_MAX, Math.floor(limit) || 1));

export class LedgerStore {
  private tip: Tip;
  private durableTip: Tip;
  private closed = false;
  private writeChain: Promise<void> = Promise.resolve();
  private writeFailure: string | null = null;
  /** Keys written by blocks staged but not yet durable, oldest first; never evicted. */
  private readonly pendingKeySets: Set<string>[] = [];
  /** Committed state cache; `null` = known to be absent. Entries are always clean. */
  private readonly accounts = new Map<string, Account | null>();
  private readonly kv = new Map<string, KvEntry | null>();
  private readonly blocks = new Map<bigint, Block>();
  /** The latest commit certificates put, oldest first (bounded by certCacheMax). */
  private readonly certs = new Map<bigint, CommitCertificate>();
  /**
   * Certificates put but not yet in a synced block batch: a crash could still lose them, and
   * one collected again may have other signers, so they are not final (certificateFinal).
   * Each block write carries them all, so this holds only those put since the last block.
   */
  private readonly certsUnsettled = new Map<bigint, CommitCertificate>();
  /**
   * Separate (unsynced) certificate writes in flight. A block batch that settles
   * certificates waits for those issued before it: LevelDB's thread pool may run writes out
   * of call order, and an older certificate's write landing after the batch that settled
   * its replacement would leave the replaced one on disk.
   */
  private readonly certPuts = new Set<Promise<void>>();
  /**
   * Certificates put that no block batch has carried yet, written on their own when
   * certWriteTimer fires (CERT_WRITE_DELAY_MS), or at once beyond certCacheMax of them.
   */
  private readonly certsUncarried = new Map<bigint, CommitCertificate>();
  private certWriteTimer: NodeJS.Timeout | null = null;
  private readonly certWriteDelayMs: number;
  /** Writes of certificates outside block batches (certificateWritesSeparate). */
  private certWritesSeparate = 0;
  /** Certificate objects put by a caller that had checked their signatures (certificateVerified). */
  private readonly certsVerified = new WeakSet<CommitCertificate>();
  private closing: Promise<void> | null = null;
  /** height -> wake-ups of callers waiting for that certificate (waitForCommitCertificate). */
  private readonly certWaiters = new Map<bigint, Set<() => void>>();
  private readonly certCacheMax: number;
  /**
   * No certificate above this height is on disk without also being in `certs`: the highest
   * one on disk at open, raised by each eviction. The executor asks for its parent's
   * certificate per block, usually before one exists; above this bound the answer needs no read.
   */
  private certDiskHeightMax: bigint;
  private readonly stateCacheMax: number;
  private readonly blockCacheMax: number;
  private readonly sync: boolean;

  private constructor(
    private readonly db: ClassicLevel<Uint8Array, Uint8Array>,
    readonly genesisHash: Uint8Array,
    tip: Tip,
    certDiskHeightMax: bigint,
    opts: LedgerStoreOptions,
  ) {
    this.certDiskHeightMax = certDiskHeightMax;
    this.certCacheMax = Math.max(1, opts.certCacheMax ?? 64);
    this.certWriteDelayMs = Math.max(0, opts.certWriteDelayMs ?? CERT_WRITE_DELAY_MS);
    this.tip = tip;
    this.durableTip = tip;
    this.stateCacheMax = opts.stateCacheEntriesMax ?? STATE_CACHE_DEFAULT;
    this.blockCacheMax = opts.blockCacheMax ?? 32;
    this.sync = opts.sync ?? true;
  }

  /** Opens (creating if needed) the store; rejects with LedgerStoreError('genesis-mismatch') for a foreign directory. */
  static async open(dir: string, opts: LedgerStoreOptions): Promise<LedgerStore> {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      ...LEVELDB_DEFAULTS,
      ...opts.leveldb,
    });
    await db.open();
    try {
      const stored = await db.get(key(P.genesis));
      let tip: Tip;
      if (stored !== undefined) {
        if (!bytesEqual(stored, opts.genesisHash)) {
          throw new LedgerStoreError(
            'genesis-mismatch',
            `data directory ${dir} belongs to genesis ${toHex(stored)}, not ${toHex(opts.genesisHash)}`,
          );
        }
        const t = await db.get(key(P.tip));
        if (t === undefined) throw new LedgerStoreError('corrupt', 'genesis hash present but no tip');
        tip = decodeTip(t);
      } else {
        const accounts = opts.genesisAccounts ?? [];
        tip = {
          height: 0n,
          hash: Uint8Array.from(opts.genesisHash),
          stateDigest: genesisStateDigest(accounts),
          timestampMs: opts.genesisTimeMs ?? 0n,
        };
        const ops = accounts.map((a) => ({
          type: 'put' as const,
          key: key(P.account, a.address),
          value: encodeAccount({ balance: a.balance, nonce: 0n }),
        }));
        ops.push({ type: 'put', key: key(P.tip), value: encodeTip(tip) });
        ops.push({ type: 'put', key: key(P.genesis), value: Buffer.from(opts.genesisHash) });
        await db.batch(ops, { sync: true });
      }
      const certKeys = await db
        .keys({ gte: key(P.cert), lt: key(P.cert + 1), reverse: true, limit: 1 })
        .all();
      const certDiskHeightMax = certKeys[0] === undefined ? 0n : readU64(certKeys[0], 1);
      return new LedgerStore(db, Uint8Array.from(opts.genesisHash), tip, certDiskHeightMax, opts);
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new LedgerStoreError('closed', 'ledger store is closed');
  }

  latestHeight(): bigint {
    return this.tip.height;
  }
  /** The genesis hash at height 0. */
  latestBlockHash(): Uint8Array {
    return this.tip.hash;
  }
  latestTip(): Tip {
    return { ...this.tip };
  }

  // ---- state ----

  /**
   * Synchronous view of committed state for the executor. Only keys loaded by `prefetch`
   * may be read; anything else is a programming error (the hot path must not hit LevelDB per tx).
   */
  readonly reader: StateReader = {
    getAccount: (hex) => {
      const a = this.accounts.get(hex);
      if (a === undefined) throw new Error(`invariant: account ${hex} read before prefetch`);
      return a ?? undefined;
    },
    getKv: (hex) => {
      const e = this.kv.get(hex);
      if (e === undefined) throw new Error(`invariant: kv ${hex} read before prefetch`);
      return e ?? undefined;
    },
  };

  /** Loads the given accounts and kv keys (hex) into the cache with one getMany. */
  async prefetch(accountsHex: Iterable<string>, kvHex: Iterable<string>): Promise<void> {
    this.assertOpen();
    const missA = [...accountsHex].filter((h) => !this.accounts.has(h));
    const missK = [...kvHex].filter((h) => !this.kv.has(h));
    if (missA.length + missK.length === 0) return;
    const keys = [
      ...missA.map((h) => key(P.account, Buffer.from(h, 'hex'))),
      ...missK.map((h) => key(P.kv, Buffer.from(h, 'hex'))),
    ];
    const vals = await this.db.getMany(keys);
    for (let i = 0; i < missA.length; i++) {
      const v = vals[i];
      // A block staged while this read was in flight holds a newer value: keep it.
      if (!this.accounts.has(missA[i]!))
        this.accounts.set(missA[i]!, v === undefined ? null : decodeAccount(v));
    }
    for (let i = 0; i < missK.length; i++) {
      const v = vals[missA.length + i];
      if (!this.kv.has(missK[i]!)) this.kv.set(missK[i]!, v === undefined ? null : decodeKvEntryRecord(v));
    }
  }

  /** Balance and nonce; zero for an address never seen. */
  async getAccount(address: Address): Promise<Account> {
    const hex = toHex(address);
    await this.prefetch([hex], []);
    return { ...(this.accounts.get(hex) ?? { balance: 0n, nonce: 0n }) };
  }

  /**
   * An account's nonce from the state cache, without I/O; undefined when the account is not
   * cached (ask getAccount then). Mempool intake and the pruning after each block find nearly
   * every account cached and skip an await and two key conversions per tx.
   */
  cachedNonce(hex: string): bigint | undefined {
    this.assertOpen();
    const a = this.accounts.get(hex);
    if (a === undefined) return undefined;
    return a === null ? 0n : a.nonce;
  }

  /** The current entry (value null = deleted, version keeps counting), or null if never written. */
  async getKv(k: Uint8Array): Promise<KvEntry | null> {
    const hex = toHex(k);
    await this.prefetch([], [hex]);
    return this.kv.get(hex) ?? null;
  }

  /** Versions of a key, newest first; `beforeVersion` pages backwards. */
  async kvHistory(k: Uint8Array, opts: { limit: number; beforeVersion?: bigint }): Promise<KvEntry[]> {
    this.assertOpen();
    const rows = await this.db
      .iterator({
        gte: kvHistKey(k, 0n),
        lt: kvHistKey(k, opts.beforeVersion ?? (1n << 64n) - 1n),
        reverse: true,
        limit: clampLimit(opts.limit),
      })
      .all();
    return rows.map(([, v]) => decodeKvEntryRecord(v));
  }

  /** Live (not deleted) keys starting with `prefix`, ascending, strictly after `after`. */
  async listKv(opts: {
    prefix: Uint8Array;
    after?: Uint8Array;
    limit: number;
  }): Promise<{ key: Uint8Array; entry: KvEntry }[]> {
    this.assertOpen();
    const limit = clampLimit(opts.limit);
    const out: { key: Uint8Array; entry: KvEntry }[] = [];
    const lower = opts.after !== undefined ? key(P.kv, opts.after) : key(P.kv, opts.prefix);
    const upper = prefixUpperBound(key(P.kv, opts.prefix));
    const range = opts.after !== undefined ? { gt: lower } : { gte: lower };
    for await (const [k, v] of this.db.iterator({ ...range, ...(upper ? { lt: upper } : {}) })) {
      const entry = decodeKvEntryRecord(v);
      if (entry.value === null) continue;
      out.push({ key: Uint8Array.from(k.subarray(1)), entry });
      if (out.length >= limit) break;
    }
    return out;
  }

  // ---- blocks and txs ----

  async getBlock(height: bigint): Promise<Block | null> {
    this.assertOpen();
    if (height < 1n || height > this.tip.height) return null;
    const cached = this.blocks.get(height);
    if (cached) return cached;
    const raw = await this.db.get(key(P.block, u64be(height)));
    if (raw === undefined) throw new LedgerStoreError('corrupt', `block ${height} missing below the tip`);
    const dec = decodeBlock(plain(raw));
    if (!dec.ok) throw new LedgerStoreError('corrupt', `block ${height}: ${dec.error.message}`);
    this.cacheBlock(dec.value);
    return dec.value;
  }

  async getBlockByHash(hash: Uint8Array): Promise<Block | null> {
    this.assertOpen();
    const h = await this.db.get(key(P.hash, hash));
    return h === undefined ? null : this.getBlock(readU64(h));
  }

  async getTx(hash: Uint8Array): Promise<TxLocation | null> {
    this.assertOpen();
    // A synchronous point read: the API asks this for every submitted tx, and an async get
    // (a libuv thread-pool round trip) measured ~170 us of CPU here against ~4 us for
    // getSync, whose index blocks and bloom filters are in memory.
    const loc = this.db.getSync(key(P.tx, hash));
    if (loc === undefined) return null;
    return this.txAt(readU64(loc, 0), readU32(loc, 8));
  }

  /**
   * Where a tx sits (height, index of its first occurrence) without reading its block: one
   * synchronous point read (see getTx). The API keeps blocks' txs cached and needs only this.
   */
  getTxLocation(hash: Uint8Array): { height: bigint; index: number } | null {
    this.assertOpen();
    const loc = this.db.getSync(key(P.tx, hash));
    return loc === undefined ? null : { height: readU64(loc, 0), index: readU32(loc, 8) };
  }

  private async txAt(height: bigint, index: number): Promise<TxLocation | null> {
    const b = await this.getBlock(height);
    const tx = b?.txs[index];
    const result = b?.results[index];
    if (!tx || !result) return null;
    return { tx, hash: txHash(tx), height, index, result };
  }

  /** Newest first. `beforeHeight` is exclusive (cursor pagination). */
  async listBlocks(opts: { beforeHeight?: bigint; limit: number }): Promise<Block[]> {
    const limit = clampLimit(opts.limit);
    let h = opts.beforeHeight !== undefined ? opts.beforeHeight - 1n : this.tip.height;
    if (h > this.tip.height) h = this.tip.height;
    const out: Block[] = [];
    for (; h >= 1n && out.length < limit; h--) {
      const b = await this.getBlock(h);
      if (b) out.push(b);
    }
    return out;
  }

  /**
   * Txs sent or received by `address`, newest first. The cursor is opaque ("height:index" of
   * the last item returned); pass it back as `before` for the next page.
   */
  async listAccountTxs(
    address: Address,
    opts: { before?: string; limit: number },
  ): Promise<{ items: TxLocation[]; nextCursor: string | null }> {
    this.assertOpen();
    const limit = clampLimit(opts.limit);
    let upper = key(P.acctTx, address, u64be((1n << 64n) - 1n), u32be(0xffffffff));
    if (opts.before !== undefined) {
      const m = /^(\d{1,20}):(\d{1,10})$/.exec(opts.before);
      if (!m) throw new RangeError('bad cursor');
      upper = key(P.acctTx, address, u64be(BigInt(m[1]!)), u32be(Number(m[2])));
    }
    const rows = await this.db
      .iterator({ gt: key(P.acctTx, address), lt: upper, reverse: true, limit })
      .all();
    const items: TxLocation[] = [];
    for (const [k] of rows) {
      const loc = await this.txAt(readU64(k, 33), readU32(k, 41));
      if (loc) items.push(loc);
    }
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: items.length === limit && last ? `${last.height}:${last.index}` : null,
    };
  }

  // ---- certificates and metadata ----

  /**
   * Keeps the certificate in memory at once (the executor of the next block reads it from
   * there, and waiters wake) and resolves. It becomes final (durable, never replaced) with the
   * next block's synced batch, which writes it (settleCertificates). Only when no block batch
   * has carried it within certWriteDelayMs is it written on its own, unsynced, so that it
   * survives a process crash on a quiet chain; close() writes whatever is still unsettled.
   * With certWriteDelayMs 0 it is written at once and the promise resolves when written.
   * A final certificate is never replaced: a block answer served as immutable keeps its ETag.
   *
   * `verified`: the caller checked its signatures against genesis (or made them), so readers
   * of this very object need not check them again (certificateVerified).
   */
  async putCommitCertificate(cert: CommitCertificate, opts: { verified?: boolean } = {}): Promise<void> {
    this.assertOpen();
    if (this.certificateFinal(cert.height)) return;
    if (opts.verified === true) this.certsVerified.add(cert);
    this.certs.delete(cert.height); // a re-put moves to the newest end
    this.certs.set(cert.height, cert);
    this.certsUnsettled.set(cert.height, cert);
    this.certsUncarried.set(cert.height, cert);
    const waiters = this.certWaiters.get(cert.height);
    if (waiters !== undefined) for (const wake of waiters) wake();
    while (this.certs.size > this.certCacheMax) {
      const [h] = this.certs.keys();
      this.certs.delete(h!);
      if (h! > this.certDiskHeightMax) this.certDiskHeightMax = h!;
    }
    // More than certCacheMax certificates with no block batch between them (not a validator's
    // pattern: each block's batch carries the certificates before it) are written at once.
    if (this.certWriteDelayMs === 0 || this.certsUncarried.size > this.certCacheMax) {
      await this.writeUncarriedCertificates();
      return;
    }
    if (this.certWriteTimer === null) {
      this.certWriteTimer = setTimeout(() => {
        this.certWriteTimer = null;
        // A failed write leaves the certificates unsettled: the next block batch or close() writes them.
        this.writeUncarriedCertificates().catch(() => undefined);
      }, this.certWriteDelayMs);
      // A store that is never closed must not keep its process alive for this write.
      this.certWriteTimer.unref();
    }
  }

  /**
   * Whether this certificate object was put with `verified` in this process. One read back
   * from disk is a new object and never is: its signatures were checked by a process that is
   * gone, or by none.
   */
  certificateVerified(cert: CommitCertificate): boolean {
    return this.certsVerified.has(cert);
  }

  /** How many writes put certificates to disk outside block batches (deferred, bound or close). */
  get certificateWritesSeparate(): number {
    return this.certWritesSeparate;
  }

  private cancelCertificateWrite(): void {
    if (this.certWriteTimer === null) return;
    clearTimeout(this.certWriteTimer);
    this.certWriteTimer = null;
  }

  /** Writes the certificates no block batch has carried, unsynced, in one write. */
  private writeUncarriedCertificates(): Promise<void> {
    this.cancelCertificateWrite();
    if (this.certsUncarried.size === 0 || this.closed) return Promise.resolve();
    const certs = [...this.certsUncarried.values()];
    this.certsUncarried.clear();
    return this.writeCertificatesSeparately(certs);
  }

  private writeCertificatesSeparately(certs: readonly CommitCertificate[]): Promise<void> {
    this.certWritesSeparate++;
    const ops = certs.map((c) => ({
      type: 'put' as const,
      key: key(P.cert, u64be(c.height)),
      value: encodeCommitCertificate(c),
    }));
    const put = this.db.batch(ops, { sync: false });
    this.certPuts.add(put);
    const done = () => {
      this.certPuts.delete(put);
    };
    put.then(done, done);
    return put;
  }

  /**
   * Whether the certificate at `height` exists and can no longer change: written in a block's
   * batch (synced unless the store was opened with sync off), or on disk at open. Answers
   * that embed it may be cached as immutable.
   */
  certificateFinal(height: bigint): boolean {
    if (this.certsUnsettled.has(height)) return false;
    return this.commitCertificateSync(height) !== null;
  }

  /** Adds the unsettled certificates to a block's batch; returns what that batch settles. */
  private settleCertificates(batch: Pick<ChainedBatchOf, 'put'>): {
    settling: [bigint, CommitCertificate][];
    landed: Promise<unknown>;
  } {
    const settling = [...this.certsUnsettled];
    for (const [h, c] of settling) batch.put(key(P.cert, u64be(h)), encodeCommitCertificate(c));
    // This batch carries every certificate waiting for its own write: under load none is
    // ever written separately. One put again before the batch lands is uncarried again.
    this.certsUncarried.clear();
    this.cancelCertificateWrite();
    // A failed separate write leaves its certificates to this batch anyway.
    const landed = this.certPuts.size === 0 ? Promise.resolve() : Promise.allSettled([...this.certPuts]);
    return { settling, landed };
  }

  private certificatesSettled(settled: readonly [bigint, CommitCertificate][]): void {
    // One put again since the batch was built is still unsettled (its newer bytes are not yet synced).
    for (const [h, c] of settled) if (this.certsUnsettled.get(h) === c) this.certsUnsettled.delete(h);
  }

  async getCommitCertificate(height: bigint): Promise<CommitCertificate | null> {
    return this.commitCertificateSync(height);
  }

  /**
   * The certificate at `height` as soon as it is put, or null once `deadlineMs` (a Date.now()
   * time) passes. Commit-mode answers wait here: a certificate forms a millisecond or two
   * after its block, and polling for it (2, 4, 8 ... ms) added up to the poll's interval to
   * every such answer. Waiters live only while their caller waits.
   */
  async waitForCommitCertificate(height: bigint, deadlineMs: number): Promise<CommitCertificate | null> {
    const have = this.commitCertificateSync(height);
    if (have !== null || Date.now() >= deadlineMs) return have;
    const waiters = this.certWaiters.get(height) ?? new Set<() => void>();
    this.certWaiters.set(height, waiters);
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    waiters.add(wake);
    const timer = setTimeout(wake, deadlineMs - Date.now());
    try {
      await woken;
    } finally {
      clearTimeout(timer);
      waiters.delete(wake);
      if (waiters.size === 0 && this.certWaiters.get(height) === waiters) this.certWaiters.delete(height);
    }
    return this.commitCertificateSync(height);
  }

  /**
   * getCommitCertificate without a promise: the executor asks for its parent's certificate
   * on the commit path of every block. From memory when it is one of the latest; a height
   * above everything on disk is answered without a read; otherwise one synchronous point
   * read (a small record whose index blocks and bloom filters are in memory, see getTx).
   */
  commitCertificateSync(height: bigint): CommitCertificate | null {
    this.assertOpen();
    // An unsettled certificate evicted from `certs` may not be on disk yet (its write waits).
    const c = this.certs.get(height) ?? this.certsUnsettled.get(height);
    if (c) return c;
    if (height > this.certDiskHeightMax) return null;
    const raw = this.db.getSync(key(P.cert, u64be(height)));
    if (raw === undefined) return null;
    const dec = decodeCommitCertificate(plain(raw));
    if (!dec.ok) throw new LedgerStoreError('corrupt', `certificate ${height}: ${dec.error.message}`);
    return dec.value;
  }

  async getMeta(name: string): Promise<Uint8Array | null> {
    this.assertOpen();
    const v = await this.db.get(metaKey(name));
    return v === undefined ? null : Uint8Array.from(v);
  }

  /** Durable (fsync) before it resolves: consensus metadata must survive before messages depend on it. */
  async putMeta(name: string, value: Uint8Array): Promise<void> {
    this.assertOpen();
    await this.db.put(metaKey(name), value, { sync: true });
  }

  /**
   * Several metadata records in one atomic, durable (fsync) write: all or none of them
   * survive a crash, and they cost one sync instead of one each.
   */
  async putMetaBatch(records: readonly MetaRecord[]): Promise<void> {
    this.assertOpen();
    if (records.length === 0) return;
    const batch = this.db.batch();
    for (const [name, value] of lastPerNameBySize(records)) batch.put(metaKey(name), value);
    await batch.write({ sync: true });
  }

  // ---- the write path ----

  /**
   * Stages one executed block and writes it durably. Synchronously (before returning) the tip
   * and the state cache move to the new block, so the executor can apply the next block while
   * this one is being written. The LevelDB write, one atomic batch with the block, its indexes,
   * its state changes and the new tip, is chained after the previous block's write, so blocks
   * reach disk one at a time and in order: after a crash the store is at a block boundary.
   * The returned promise resolves when the block is durable. A failed write is fatal: the
   * store refuses further blocks (the node must stop and restart from disk).
   */
  writeBlock(w: BlockWrite): Promise<void> {
    this.assertOpen();
    if (this.writeFailure !== null) {
      return Promise.reject(
        new LedgerStoreError('write-failed', `an earlier block write failed: ${this.writeFailure}`),
      );
    }
    const h = w.block.header;
    if (h.height !== this.tip.height + 1n || !bytesEqual(h.prevHash, this.tip.hash)) {
      return Promise.reject(
        new LedgerStoreError('out-of-order', `block ${h.height} does not extend tip ${this.tip.height}`),
      );
    }
    const accountWrites = [...w.accountWrites];
    const lastKv = new Map<string, { key: Uint8Array; entry: KvEntry }>();
    for (const e of w.kvLog) lastKv.set(toHex(e.key), e);
    const tip: Tip = {
      height: h.height,
      hash: w.hash,
      stateDigest: h.stateDigest,
      timestampMs: h.timestampMs,
    };

    // Stage: from here on reads see the block (the block cache serves it until it is durable).
    this.tip = tip;
    for (const a of accountWrites) this.accounts.set(toHex(a.address), a.account);
    for (const [hex, e] of lastKv) this.kv.set(hex, e.entry);
    this.cacheBlock(w.block);
    const pendingKeys = new Set<string>([...accountWrites.map((a) => toHex(a.address)), ...lastKv.keys()]);
    this.pendingKeySets.push(pendingKeys);

    const done = this.writeChain.then(() => this.persist(w, tip, accountWrites, lastKv));
    this.writeChain = done;
    done.then(
      () => {
        this.durableTip = tip;
        this.pendingKeySets.shift();
      },
      (e: unknown) => {
        this.writeFailure ??= e instanceof Error ? e.message : String(e);
      },
    );
    return done;
  }

  private async persist(
    w: BlockWrite,
    tip: Tip,
    accountWrites: { address: Uint8Array; account: Account }[],
    lastKv: Map<string, { key: Uint8Array; entry: KvEntry }>,
  ): Promise<void> {
    const height = u64be(tip.height);
    // Earlier locations of this block's failed txs: a replayed tx has the same hash as the
    // original and fails bad-nonce; the location index keeps the first occurrence. Every
    // earlier block is durable by now (writes are chained), so one getMany sees them all.
    const maybeSeen: number[] = [];
    for (let i = 0; i < w.txHashes.length; i++) {
      const r = w.block.results[i]!;
      if (!r.ok && (r.code === 'bad-nonce' || r.code === 'malformed' || r.code === 'bad-signature')) {
        maybeSeen.push(i);
      }
    }
    const earlier =
      maybeSeen.length === 0 ? [] : await this.db.getMany(maybeSeen.map((i) => key(P.tx, w.txHashes[i]!)));
    const skip = new Set<number>(maybeSeen.filter((_, j) => earlier[j] !== undefined));

    // A chained batch hands each op to LevelDB's native batch at once, which measured cheaper
    // per op than the array form; it is still committed atomically by write().
    const batch = this.db.batch();
    batch.put(key(P.hash, w.hash), height);
    const seen = new Set<string>();
    for (let i = 0; i < w.txHashes.length; i++) {
      const hash = w.txHashes[i]!;
      const id = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('latin1');
      const idx = u32be(i);
      if (!skip.has(i) && !seen.has(id)) {
        seen.add(id);
        batch.put(key(P.tx, hash), Buffer.concat([height, idx]));
      }
      // The key alone locates the tx; the value stays empty to keep the index small.
      for (const a of w.txAccounts[i] ?? []) batch.put(key(P.acctTx, a, height, idx), EMPTY);
    }
    for (const a of accountWrites) batch.put(key(P.account, a.address), encodeAccount(a.account));
    for (const e of w.kvLog) batch.put(kvHistKey(e.key, e.entry.version), encodeKvEntry(e.entry));
    for (const e of lastKv.values()) batch.put(key(P.kv, e.key), encodeKvEntry(e.entry));
    batch.put(key(P.tip), encodeTip(tip));
    const { settling, landed } = this.settleCertificates(batch);
    // The block, about as large as its batch, goes last, after any smaller metadata: appending
    // to LevelDB's native batch after a large value measured up to ~1 ms of CPU per write
    // (see lastPerNameBySize). A record larger than the block (a backlog's PREPARE) follows it.
    const encoded = encodeBlock(w.block);
    const meta = w.meta === undefined ? [] : lastPerNameBySize(w.meta);
    let m = 0;
    for (; m < meta.length && meta[m]![1].length <= encoded.length; m++)
      batch.put(metaKey(meta[m]![0]), meta[m]![1]);
    batch.put(key(P.block, height), encoded);
    for (; m < meta.length; m++) batch.put(metaKey(meta[m]![0]), meta[m]![1]);
    await landed;
    // Synced whenever it carries metadata: those records are the node's consensus state.
    await batch.write({ sync: this.sync || meta.length > 0 });
    this.certificatesSettled(settling);
  }

  /** Resolves when every staged block is durable. */
  async flush(): Promise<void> {
    await this.writeChain;
  }

  /** The highest block known to be on disk (latestHeight() may be ahead by the blocks being written). */
  durableHeight(): bigint {
    return this.durableTip.height;
  }

  /** The last block on disk: what a status report may promise (a crash cannot take it back). */
  latestDurableTip(): Tip {
    return { ...this.durableTip };
  }

  private cacheBlock(b: Block): void {
    this.blocks.set(b.header.height, b);
    while (this.blocks.size > this.blockCacheMax) this.blocks.delete(this.blocks.keys().next().value!);
  }

  /**
   * Drops the oldest cached state entries above the bound. Called by the executor before it
   * prefetches a block, so nothing it loaded can be evicted before it is applied. Entries
   * written by blocks that are not durable yet stay: evicting one would let a later prefetch
   * read its older value from disk.
   */
  trimCache(): void {
    const pending = (k: string) => this.pendingKeySets.some((set) => set.has(k));
    for (const m of [this.accounts, this.kv] as Map<string, unknown>[]) {
      let over = m.size - this.stateCacheMax;
      if (over <= 0) continue;
      for (const k of m.keys()) {
        if (over <= 0) break;
        if (pending(k)) continue;
        m.delete(k);
        over--;
      }
    }
  }

  /**
   * Waits for staged blocks to be written, writes the certificates no synced block batch
   * holds (those waiting for their separate write, and any a failed block write carried),
   * then closes LevelDB. Rejects if that write fails; LevelDB is closed either way.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.writeChain.catch(() => undefined);
    this.closed = true; // from here on puts are refused, so nothing can slip past the last write
    this.cancelCertificateWrite();
    this.certsUncarried.clear();
    try {
      // Earlier separate writes first: one landing after the last write could put an older certificate back.
      await Promise.allSettled([...this.certPuts]);
      if (this.certsUnsettled.size > 0)
        await this.writeCertificatesSeparately([...this.certsUnsettled.values()]);
    } finally {
      await this.db.close();
    }
  }
}

function prefixUpperBound(prefix: Uint8Array): Uint8Array | null {
  const b = Uint8Array.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]! += 1;
      return b.subarray(0, i + 1);
    }
  }
  return null;
}
