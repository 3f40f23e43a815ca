// The deterministic state machine: accounts (balance, nonce) and a versioned key-value space.
// Pure: no I/O, no clock. The same prechecked txs applied to the same state give the same
// results, writes and digest on every machine.
//
// Rules (also in docs/ledger.md):
// - A tx whose bytes do not decode, whose chain id is wrong or whose signature fails changes
//   nothing. A tx whose nonce is not the sender's nonce + 1 changes nothing (replay protection).
// - Otherwise the sender's nonce advances even when the payload then fails (insufficient
//   funds, cas mismatch, delete of a missing key), like a failed transaction that was included.
// - kv versions only ever grow per key: put and cas set version + 1, delete leaves a tombstone
//   with version + 1. So a compare-and-set can never succeed on a stale read (no ABA), which is
//   what a lock or leader lease built on kv.cas needs. A key never written has version 0.
//
// State digest: stateDigest(h) = SHA-256(domain || stateDigest(h-1) || height || every account
// and kv entry written by block h, in key order). It is a digest of the state's history, cheap
// per block (cost grows with the block, not the state), and equal on two machines iff they
// applied the same writes; the genesis digest covers the initial accounts the same way.

import { failure, type TxResult } from './block.js';
import { bytesEqual, toHex, Writer } from './codec/binary.js';
import { HASH_BYTES, sha256 as sha256Of } from './keys.js';
import {
  decodeTx,
  type SignedTx,
  signedBodyOfEncoded,
  TX_SIGNING_DOMAIN,
  txHashHexInto,
  txHashWithHex,
  U64_MAX,
  verifyEncodedTx,
} from './tx.js';
import { type SignatureCheck, verifyMany } from './verify-pool.js';

export interface Account {
  balance: bigint;
  nonce: bigint;
}

export interface KvEntry {
  /** null marks a deleted key (tombstone); its version keeps counting. */
  value: Uint8Array | null;
  version: bigint;
  lastModifiedHeight: bigint;
  lastModifiedBy: Uint8Array;
}

/** Read access to committed state; keys are lowercase hex of the address / kv key. */
export interface StateReader {
  getAccount(addressHex: string): Account | undefined;
  getKv(keyHex: string): KvEntry | undefined;
}

/** The outcome of the stateless checks (decode, chain id, signature), done ahead of execution. */
export interface PrecheckedTx {
  bytes: Uint8Array;
  hash: Uint8Array;
  tx: SignedTx | null;
  /** Set when the tx failed a stateless check; it will be recorded as failed. */
  rejection: TxResult | null;
  /** Hex of the tx hash, computed once for the verified-set lookup and the node's bookkeeping. */
  hashHex: string;
  /** Hex of the sender and (transfers) recipient, computed once for the cache lookups. */
  fromHex?: string;
  toHex?: string;
}

export interface AccountWrite {
  address: Uint8Array;
  account: Account;
}
export interface KvWrite {
  key: Uint8Array;
  entry: KvEntry;
}

export interface BlockOutcome {
  results: TxResult[];
  /** Writes keyed by hex, sorted by key when iterated via `sortedAccountWrites` etc. */
  accountWrites: Map<string, AccountWrite>;
  kvWrites: Map<string, KvWrite>;
  /** Every kv write in execution order (a key written twice in a block appears twice). */
  kvLog: KvWrite[];
  stateDigest: Uint8Array;
}

export const STATE_DIGEST_DOMAIN = new TextEncoder().encode('hybster/state/v1');
const ZERO_DIGEST = new Uint8Array(32);

const badSignature = (pre: PrecheckedTx): PrecheckedTx => ({
  bytes: pre.bytes,
  hash: pre.hash,
  hashHex: pre.hashHex,
  tx: pre.tx,
  rejection: failure('bad-signature', 'signature does not verify against from'),
});

const VIEWS = { views: true } as const;

/**
 * Everything precheckTx does but the signature check. With a `hashes` array the tx's hash is
 * written into it at `index` (32 bytes each) and handed out as a view, and the tx's byte
 * fields are views into `bytes` (see startPrecheck for when both are safe); without one, the
 * hash and the fields are arrays of their own.
 */
function decodeForPrecheck(
  bytes: Uint8Array,
  chainId: string,
  hashes: Uint8Array | null,
  index: number,
): PrecheckedTx {
  let hash: Uint8Array;
  let hashHex: string;
  if (hashes === null) ({ hash, hashHex } = txHashWithHex(bytes));
  else {
    hashHex = txHashHexInto(bytes, hashes, index * HASH_BYTES);
    hash = new Uint8Array(hashes.buffer, hashes.byteOffset + index * HASH_BYTES, HASH_BYTES);
  }
  const dec = decodeTx(bytes, hashes === null ? {} : VIEWS);
  if (!dec.ok) return { bytes, hash, hashHex, tx: null, rejection: failure('malformed', dec.error.message) };
  const tx = dec.value;
  if (tx.chainId !== chainId) {
    const rejection = failure('wrong-chain', `chainId "${tx.chainId}" is not "${chainId}"`);
    return { bytes, hash, hashHex, tx, rejection };
  }
  const pl = tx.payload;
  const pre: PrecheckedTx = { bytes, hash, hashHex, tx, rejection: null, fromHex: toHex(tx.from) };
  // Assigned rather than spread in: an object spread per tx measured as a visible share of the precheck.
  if (pl.type === 'transfer') pre.toHex = toHex(pl.to);
  return pre;
}

/** A tx that decoded for this chain and whose signature is not known to be verified. */
const needsCheck = (
  pre: PrecheckedTx,
  signatureVerified: ((hashHex: string) => boolean) | undefined,
): pre is PrecheckedTx & { tx: SignedTx } =>
  pre.rejection === null && pre.tx !== null && signatureVerified?.(pre.hashHex) !== true;

// In two parts, so the verify pool packs the signed bytes straight from the tx.
const signatureCheck = (pre: PrecheckedTx & { tx: SignedTx }): SignatureCheck => ({
  signature: pre.tx.signature,
  messagePrefix: TX_SIGNING_DOMAIN,
  messageBody: signedBodyOfEncoded(pre.bytes),
  publicKey: pre.tx.from,
});

/**
 * Decode, chain-id and signature checks for one tx. Stateless, so it can run ahead of execution.
 * `signatureVerified(hashHex)` names txs whose signature was already checked (the mempool's):
 * the tx hash covers every byte, signature included, so those skip the Ed25519 verify.
 */
export function precheckTx(
  bytes: Uint8Array,
  chainId: string,
  signatureVerified?: (hashHex: string) => boolean,
): PrecheckedTx {
  const pre = decodeForPrecheck(bytes, chainId, null, 0);
  if (needsCheck(pre, signatureVerified) && !verifyEncodedTx(pre.bytes, pre.tx.signature, pre.tx.from))
    return badSignature(pre);
  return pre;
}

export const precheckTxs = (
  txs: Uint8Array[],
  chainId: string,
  signatureVerified?: (hashHex: string) => boolean,
): PrecheckedTx[] => txs.map((b) => precheckTx(b, chainId, signatureVerified));

/** A precheck under way: the hashes are known at once, the signature checks come later. */
export interface PrecheckRun {
  /** Hex of every tx's hash, in order, before any signature is checked. */
  readonly hashesHex: readonly string[];
  readonly txs: Promise<PrecheckedTx[]>;
}

/**
 * precheckTxs with the signatures that need checking verified together by the verify
 * pool (ledger/verify-pool.ts): a block's worth of checks does not stall the event loop.
 * Decoding and hashing happen before it returns, so the caller learns the tx hashes at once.
 *
 * Made for a block's txs, with fewer arrays per tx than precheckTxs: the decoded txs' byte
 * fields (from, to, signature, kv key and value) are views into `txs`, not copies, so the
 * caller must not change those bytes while the result lives; and the tx hashes are views
 * into one array for all of them. The executor's txs are views into a copy of the batch that
 * only its block holds, which the prechecked txs (through `bytes`) and the block keep alive
 * anyway; the hashes go to the block's Merkle root and its write, and are dropped with the
 * block; whatever outlives the block (the kv entries the store caches) applyTxs copies out.
 */
export function startPrecheck(
  txs: Uint8Array[],
  chainId: string,
  signatureVerified?: (hashHex: string) => boolean,
): PrecheckRun {
  const hashes = new Uint8Array(HASH_BYTES * txs.length);
  const pres: PrecheckedTx[] = new Array(txs.length);
  const hashesHex: string[] = new Array(txs.length);
  const toCheck: number[] = [];
  for (let i = 0; i < txs.length; i++) {
    const pre = decodeForPrecheck(txs[i] as Uint8Array, chainId, hashes, i);
    pres[i] = pre;
    hashesHex[i] = pre.hashHex;
    if (needsCheck(pre, signatureVerified)) toCheck.push(i);
  }
  // Under load the mempool verified nearly every tx: no pool round trip, no copy then.
  if (toCheck.length === 0) return { hashesHex, txs: Promise.resolve(pres) };
  const checked = verifyMany(toCheck.map((i) => signatureCheck(pres[i] as PrecheckedTx & { tx: SignedTx })));
  return {
    hashesHex,
    txs: checked.then((verdicts) => {
      for (let k = 0; k < toCheck.length; k++) {
        const i = toCheck[k] as number;
        if (verdicts[k] !== true) pres[i] = badSignature(pres[i] as PrecheckedTx);
      }
      return pres;
    }),
  };
}

/** Hex keys every tx of the block may touch, so a store can load them in one read. */
export function touchedKeys(txs: PrecheckedTx[]): { accounts: Set<string>; kv: Set<string> } {
  const accounts = new Set<string>();
  const kv = new Set<string>();
  for (const p of txs) {
    if (p.tx === null || p.rejection !== null) continue;
    accounts.add(p.fromHex ?? toHex(p.tx.from));
    const pl = p.tx.payload;
    if (pl.type === 'transfer') accounts.add(p.toHex ?? toHex(pl.to));
    else kv.add(toHex(pl.key));
  }
  return { accounts, kv };
}

const ZERO_ACCOUNT: Account = Object.freeze({ balance: 0n, nonce: 0n });
/** Every successful tx's result: one frozen object instead of one per tx. */
const OK_RESULT: TxResult = Object.freeze({ ok: true });

/**
 * Applies prechecked txs on top of `reader` for block `height`. Never throws on bad input:
 * every tx gets a result. Returns the writes (nothing is mutated) and the new digest.
 */
export function applyTxs(
  reader: StateReader,
  txs: PrecheckedTx[],
  height: bigint,
  prevDigest: Uint8Array,
): BlockOutcome {
  const accountWrites = new Map<string, AccountWrite>();
  const kvWrites = new Map<string, KvWrite>();
  const kvLog: KvWrite[] = [];
  const account = (hex: string): Account =>
    accountWrites.get(hex)?.account ?? reader.getAccount(hex) ?? ZERO_ACCOUNT;
  const kvEntry = (hex: string): KvEntry | undefined => kvWrites.get(hex)?.entry ?? reader.getKv(hex);

  const results: TxResult[] = new Array(txs.length);
  for (let i = 0; i < txs.length; i++) {
    const p = txs[i]!;
    if (p.rejection !== null || p.tx === null) {
      results[i] = p.rejection ?? failure('malformed', 'undecodable');
      continue;
    }
    const tx = p.tx;
    const fromHex = p.fromHex ?? toHex(tx.from);
    const sender = account(fromHex);
    if (tx.nonce !== sender.nonce + 1n) {
      results[i] = failure('bad-nonce', `nonce ${tx.nonce}, expected ${sender.nonce + 1n}`);
      continue;
    }
    const afterNonce: Account = { balance: sender.balance, nonce: sender.nonce + 1n };
    const pl = tx.payload;
    let result: TxResult = OK_RESULT;
    switch (pl.type) {
      case 'transfer': {
        if (afterNonce.balance < pl.amount) {
          result = failure('insufficient-funds', `balance ${afterNonce.balance} < amount ${pl.amount}`);
          accountWrites.set(fromHex, { address: tx.from, account: afterNonce });
          break;
        }
        afterNonce.balance -= pl.amount;
        accountWrites.set(fromHex, { address: tx.from, account: afterNonce });
        const toHexKey = p.toHex ?? toHex(pl.to);
        const recipient = account(toHexKey);
        if (recipient.balance + pl.amount > U64_MAX) {
          // Unreachable while genesis supply fits u64; kept so execution cannot corrupt state.
          afterNonce.balance += pl.amount;
          result = failure('overflow', 'recipient balance would exceed u64');
          break;
        }
        // A block's txs mostly pay a few recipients: the write made for one earlier in this
        // block (an object of this call, never the reader's) is updated, not replaced.
        const written = accountWrites.get(toHexKey);
        if (written !== undefined) written.account.balance = recipient.balance + pl.amount;
        else
          accountWrites.set(toHexKey, {
            address: pl.to,
            account: { balance: recipient.balance + pl.amount, nonce: recipient.nonce },
          });
        break;
      }
      case 'kv.put':
      case 'kv.cas':
      case 'kv.delete': {
        accountWrites.set(fromHex, { address: tx.from, account: afterNonce });
        const keyHex = toHex(pl.key);
        const cur = kvEntry(keyHex);
        const version = cur?.version ?? 0n;
        if (pl.type === 'kv.cas' && version !== pl.expectedVersion) {
          result = failure('cas-mismatch', `expected version ${pl.expectedVersion}, current ${version}`);
          break;
        }
        if (pl.type === 'kv.delete' && (cur === undefined || cur.value === null)) {
          result = failure('not-found', 'key does not exist');
          break;
        }
        // Copies: the store caches the entry (up to its state cache bound) long after the block,
        // and the tx's fields may be views into the block's whole batch (startPrecheck).
        const write: KvWrite = {
          key: pl.key.slice(),
          entry: {
            value: pl.type === 'kv.delete' ? null : pl.value.slice(),
            version: version + 1n,
            lastModifiedHeight: height,
            lastModifiedBy: tx.from.slice(),
          },
        };
        kvWrites.set(keyHex, write);
        kvLog.push(write);
        break;
      }
    }
    results[i] = result;
  }
  const stateDigest = digestWrites(prevDigest, height, accountWrites, kvWrites);
  return { results, accountWrites, kvWrites, kvLog, stateDigest };
}

const sortedValues = <T>(m: Map<string, T>): T[] => [...m.keys()].sort().map((k) => m.get(k)!); // hex order == byte order

/** Bytes of an encoded account record (state.ts encodeAccount): balance u64 | nonce u64. */
export const ACCOUNT_RECORD_BYTES = 16;

/**
 * Writes an account's record (balance u64 | nonce u64, big-endian) at `offset` of `view`:
 * the digest and the store's batch write it in place, with no record of its own per account.
 */
export function writeAccountRecord(view: DataView, offset: number, a: Account): void {
  if (a.balance < 0n || a.balance > U64_MAX || a.nonce < 0n || a.nonce > U64_MAX)
    throw new RangeError(`account out of u64 range: balance ${a.balance}, nonce ${a.nonce}`);
  view.setBigUint64(offset, a.balance);
  view.setBigUint64(offset + 8, a.nonce);
}

export function encodeAccount(a: Account): Uint8Array {
  const out = new Uint8Array(ACCOUNT_RECORD_BYTES);
  writeAccountRecord(new DataView(out.buffer), 0, a);
  return out;
}

export function encodeKvEntry(e: KvEntry): Uint8Array {
  const w = new Writer(64 + (e.value?.length ?? 0));
  if (e.value === null) w.u8(0);
  else w.u8(1).bytes(e.value);
  return w.u64(e.version).u64(e.lastModifiedHeight).raw(e.lastModifiedBy).finish();
}

/**
 * The digest's input is built here and hashed at once, so one buffer serves every block; a
 * block larger than this gets a buffer of its own rather than growing the kept one.
 */
const DIGEST_SCRATCH_BYTES_MAX = 1 << 20;
let digestScratch = new Uint8Array(16 * 1024);
let digestScratchView = new DataView(digestScratch.buffer);

function digestWrites(
  prevDigest: Uint8Array,
  height: bigint,
  accounts: Map<string, AccountWrite>,
  kv: Map<string, KvWrite>,
): Uint8Array {
  const head = STATE_DIGEST_DOMAIN.length + prevDigest.length + 8 + 4;
  if (kv.size > 0) {
    // kv writes are rare beside transfers and variable in size: the general writer does them.
    const w = new Writer(head + accounts.size * 48 + 4 + kv.size * 96);
    w.raw(STATE_DIGEST_DOMAIN).raw(prevDigest).u64(height).u32(accounts.size);
    for (const a of sortedValues(accounts)) w.raw(a.address).raw(encodeAccount(a.account));
    w.u32(kv.size);
    for (const e of sortedValues(kv)) w.bytes(e.key).raw(encodeKvEntry(e.entry));
    return sha256Of(w.written());
  }
  const sorted = sortedValues(accounts);
  let size = head + 4;
  for (const a of sorted) size += a.address.length + ACCOUNT_RECORD_BYTES;
  let buf = digestScratch;
  let view = digestScratchView;
  if (size > buf.length) {
    buf = new Uint8Array(size);
    view = new DataView(buf.buffer);
    if (size <= DIGEST_SCRATCH_BYTES_MAX) {
      digestScratch = buf;
      digestScratchView = view;
    }
  }
  // The writer's layout above, written in place.
  buf.set(STATE_DIGEST_DOMAIN, 0);
  buf.set(prevDigest, STATE_DIGEST_DOMAIN.length);
  view.setBigUint64(head - 12, height);
  view.setUint32(head - 4, accounts.size);
  let off = head;
  for (const a of sorted) {
    buf.set(a.address, off);
    off += a.address.length;
    writeAccountRecord(view, off, a.account);
    off += ACCOUNT_RECORD_BYTES;
  }
  view.setUint32(off, 0); // kv.size
  return sha256Of(buf.subarray(0, size));
}

/** Digest of the genesis state (height 0): the initial accounts, as if written by block 0. */
export function genesisStateDigest(accounts: { address: Uint8Array; balance: bigint }[]): Uint8Array {
  const m = new Map<string, AccountWrite>();
  for (const a of accounts) {
    const hex = toHex(a.address);
    if (m.has(hex)) throw new RangeError(`duplicate genesis account ${hex}`);
    m.set(hex, { address: a.address, account: { balance: a.balance, nonce: 0n } });
  }
  return digestWrites(ZERO_DIGEST, 0n, m, new Map());
}

/** A plain in-memory state, used by tests and tools to replay blocks without a store. */
export class MemoryState implements StateReader {
  readonly accounts = new Map<string, Account>();
  readonly kv = new Map<string, KvEntry>();
  digest: Uint8Array;
  height = 0n;

  constructor(genesisAccounts: { address: Uint8Array; balance: bigint }[]) {
    for (const a of genesisAccounts) this.accounts.set(toHex(a.address), { balance: a.balance, nonce: 0n });
    this.digest = genesisStateDigest(genesisAccounts);
  }

  getAccount(hex: string): Account | undefined {
    return this.accounts.get(hex);
  }
  getKv(hex: string): KvEntry | undefined {
    return this.kv.get(hex);
  }

  /** Applies one block's txs at the next height and returns the outcome. */
  applyBlock(txs: Uint8Array[], chainId: string): BlockOutcome {
    const height = this.height + 1n;
    const out = applyTxs(this, precheckTxs(txs, chainId), height, this.digest);
    for (const [k, w] of out.accountWrites) this.accounts.set(k, w.account);
    for (const [k, w] of out.kvWrites) this.kv.set(k, w.entry);
    this.digest = out.stateDigest;
    this.height = height;
    return out;
  }
}

export const digestsEqual = bytesEqual;
