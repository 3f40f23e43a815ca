// Blocks: header (what the block hash covers), body (txs and their results) and the commit
// certificate of the parent block. Layouts are documented in docs/ledger.md.
//
// Height: the genesis state is height 0 and no block is stored for it; the block for
// consensus order number o has height o + 1, and block 1's prevHash is the genesis hash.
//
// The parent commit certificate is carried by a block but NOT covered by its hash: each
// validator assembles its own f+1 signatures for the parent, so including them would make
// honest validators compute different hashes for the same ordered batch. The certificate is
// self-verifying (it signs the parent's hash), so it needs no further binding.
import { ADDRESS_BYTES } from './address.js';
import {
  bytesEqual,
  DecodeError,
  decodeWith,
  err,
  ok,
  type Reader,
  type Result,
  Writer,
} from './codec/binary.js';
import { HASH_BYTES, SIGNATURE_BYTES, sha256, sha256Parts, sign, verify } from './keys.js';
import { merkleRoot } from './merkle.js';
import { CHAIN_ID_BYTES_MAX, TX_BYTES_MAX, txHash } from './tx.js';

export interface BlockHeader {
  chainId: string;
  height: bigint;
  /** Hash of the block at height - 1; the genesis hash for block 1. */
  prevHash: Uint8Array;
  /** Merkle root (merkle.ts) over the tx hashes, in block order. */
  txRoot: Uint8Array;
  /** SHA-256 of the encoded result list, so the per-tx outcomes are committed too. */
  resultsHash: Uint8Array;
  /** State digest after executing this block (state.ts). */
  stateDigest: Uint8Array;
  timestampMs: bigint;
  view: bigint;
  order: bigint;
  /** Validator index (genesis order) of the leader that proposed the batch. */
  proposer: number;
  txCount: number;
}

export type TxFailureCode =
  | 'malformed'
  | 'wrong-chain'
  | 'bad-signature'
  | 'bad-nonce'
  | 'insufficient-funds'
  | 'cas-mismatch'
  | 'not-found'
  | 'overflow';
export type TxResult = { ok: true } | { ok: false; code: TxFailureCode; message: string };

export interface CommitSignature {
  validator: number;
  signature: Uint8Array;
}
export interface CommitCertificate {
  height: bigint;
  blockHash: Uint8Array;
  signatures: CommitSignature[];
}

export interface Block {
  header: BlockHeader;
  txs: Uint8Array[];
  results: TxResult[];
  parentCommit: CommitCertificate | null;
}

export const BLOCK_VERSION = 1;
export const BLOCK_HASH_DOMAIN = new TextEncoder().encode('hybster/block/v1');
export const COMMIT_SIGNING_DOMAIN = new TextEncoder().encode('hybster/commit/v1');
export const RESULT_MESSAGE_BYTES_MAX = 256;
export const BLOCK_TXS_MAX = 100_000;
export const BLOCK_BYTES_MAX = 64 * 1024 * 1024;
export const COMMIT_SIGNATURES_MAX = 1024;

export const RESULT_CODES: Record<'ok' | TxFailureCode, number> = {
  ok: 0,
  malformed: 1,
  'wrong-chain': 2,
  'bad-signature': 3,
  'bad-nonce': 4,
  'insufficient-funds': 5,
  'cas-mismatch': 6,
  'not-found': 7,
  overflow: 8,
};
const CODE_BY_NUMBER = new Map<number, 'ok' | TxFailureCode>(
  Object.entries(RESULT_CODES).map(([k, v]) => [v, k as 'ok' | TxFailureCode]),
);

export function encodeHeader(h: BlockHeader): Uint8Array {
  const w = new Writer(256);
  w.u8(BLOCK_VERSION).string(h.chainId).u64(h.height);
  for (const [name, v] of [
    ['prevHash', h.prevHash],
    ['txRoot', h.txRoot],
    ['resultsHash', h.resultsHash],
    ['stateDigest', h.stateDigest],
  ] as const) {
    if (v.length !== HASH_BYTES) throw new RangeError(`${name} must be 32 bytes`);
    w.raw(v);
  }
  w.u64(h.timestampMs).u64(h.view).u64(h.order).u32(h.proposer).u32(h.txCount);
  return w.finish();
}

function readHeader(r: Reader): BlockHeader {
  const version = r.u8('header.version');
  if (version !== BLOCK_VERSION) throw new DecodeError('bad-version', `block version ${version}`, 'version');
  return {
    chainId: r.string(CHAIN_ID_BYTES_MAX, 'header.chainId'),
    height: r.u64('header.height'),
    prevHash: r.raw(HASH_BYTES, 'header.prevHash'),
    txRoot: r.raw(HASH_BYTES, 'header.txRoot'),
    resultsHash: r.raw(HASH_BYTES, 'header.resultsHash'),
    stateDigest: r.raw(HASH_BYTES, 'header.stateDigest'),
    timestampMs: r.u64('header.timestampMs'),
    view: r.u64('header.view'),
    order: r.u64('header.order'),
    proposer: r.u32('header.proposer'),
    txCount: r.count(BLOCK_TXS_MAX, 'header.txCount'),
  };
}

export const decodeHeader = (bytes: Uint8Array): Result<BlockHeader> => decodeWith(bytes, 1024, readHeader);

export const blockHash = (header: BlockHeader): Uint8Array =>
  sha256Parts(BLOCK_HASH_DOMAIN, encodeHeader(header));

const UTF8 = new TextEncoder();
const resultMessageBytes = (res: TxResult & { ok: false }): Uint8Array =>
  UTF8.encode(res.message).subarray(0, RESULT_MESSAGE_BYTES_MAX);

function writeResult(w: Writer, res: TxResult, message?: Uint8Array): void {
  if (res.ok) {
    w.u8(RESULT_CODES.ok);
    return;
  }
  w.u8(RESULT_CODES[res.code]).bytes(message ?? resultMessageBytes(res));
}

function readResult(r: Reader, field: string): TxResult {
  const n = r.u8(`${field}.code`);
  const code = CODE_BY_NUMBER.get(n);
  if (code === undefined) throw new DecodeError('bad-tag', `${field}: unknown result code ${n}`, field);
  if (code === 'ok') return { ok: true };
  return { ok: false, code, message: r.string(RESULT_MESSAGE_BYTES_MAX, `${field}.message`) };
}

/** Encoding hashed into header.resultsHash: u32 count, then each result. */
export function encodeResults(results: TxResult[]): Uint8Array {
  const w = new Writer(4 + results.length);
  w.u32(results.length);
  for (const res of results) writeResult(w, res);
  return w.finish();
}

export const resultsHash = (results: TxResult[]): Uint8Array => sha256(encodeResults(results));

/**
 * A failure message truncated the way it is encoded, so a TxResult built by the executor
 * equals the one decoded from storage.
 */
export function failure(code: TxFailureCode, message: string): TxResult {
  const bytes = new TextEncoder().encode(message);
  if (bytes.length <= RESULT_MESSAGE_BYTES_MAX) return { ok: false, code, message };
  return { ok: false, code, message: new TextDecoder().decode(bytes.subarray(0, RESULT_MESSAGE_BYTES_MAX)) };
}

export function commitSigningBytes(height: bigint, hash: Uint8Array): Uint8Array {
  return new Writer(64).raw(COMMIT_SIGNING_DOMAIN).u64(height).raw(hash).finish();
}

export function signCommit(height: bigint, hash: Uint8Array, validator: number, secretKey: Uint8Array) {
  return {
    validator,
    signature: sign(commitSigningBytes(height, hash), secretKey),
  } satisfies CommitSignature;
}

function writeCert(w: Writer, c: CommitCertificate): void {
  if (c.blockHash.length !== HASH_BYTES) throw new RangeError('blockHash must be 32 bytes');
  w.u64(c.height).raw(c.blockHash).u32(c.signatures.length);
  for (const s of c.signatures) w.u32(s.validator).raw(s.signature);
}

function readCert(r: Reader): CommitCertificate {
  const height = r.u64('cert.height');
  const hash = r.raw(HASH_BYTES, 'cert.blockHash');
  const n = r.count(COMMIT_SIGNATURES_MAX, 'cert.signatures.count');
  const signatures: CommitSignature[] = [];
  for (let i = 0; i < n; i++) {
    signatures.push({
      validator: r.u32('cert.validator'),
      signature: r.raw(SIGNATURE_BYTES, 'cert.signature'),
    });
  }
  return { height, blockHash: hash, signatures };
}

export function encodeCommitCertificate(c: CommitCertificate): Uint8Array {
  const w = new Writer(48 + c.signatures.length * 68);
  writeCert(w, c);
  return w.finish();
}

export const decodeCommitCertificate = (bytes: Uint8Array): Result<CommitCertificate> =>
  decodeWith(bytes, 48 + COMMIT_SIGNATURES_MAX * 68, readCert);

/** True when at least f+1 distinct validators in range signed (height, blockHash). Never throws. */
export function verifyCommitCertificate(
  cert: CommitCertificate,
  validatorPublicKeys: Uint8Array[],
  f: number,
): boolean {
  if (!Number.isInteger(f) || f < 0) return false;
  const msg = commitSigningBytes(cert.height, cert.blockHash);
  const good = new Set<number>();
  for (const s of cert.signatures) {
    if (good.has(s.validator)) continue;
    const pk = validatorPublicKeys[s.validator];
    if (pk === undefined || pk.length !== ADDRESS_BYTES) continue;
    if (verify(s.signature, msg, pk)) good.add(s.validator);
  }
  return good.size >= f + 1;
}

/**
 * True when `cert` vouches for exactly this block: its height and hash, signed by f+1
 * validators. A valid certificate for another block proves nothing about this one, and a
 * block's parentCommit is not covered by any hash, so whoever sends a block can attach any
 * certificate there.
 */
export function certifies(
  cert: CommitCertificate,
  height: bigint,
  hash: Uint8Array,
  validatorPublicKeys: Uint8Array[],
  f: number,
): boolean {
  return (
    cert.height === height &&
    bytesEqual(cert.blockHash, hash) &&
    verifyCommitCertificate(cert, validatorPublicKeys, f)
  );
}

export function encodeBlock(b: Block): Uint8Array {
  if (b.txs.length !== b.header.txCount || b.results.length !== b.header.txCount) {
    throw new RangeError('txs/results length differs from header.txCount');
  }
  const header = encodeHeader(b.header);
  // Sized exactly, so the buffer is handed out as it is: a block is about as large as its
  // batch (100s of KB), and a writer that has to grow, or finish()'s copy, costs one more
  // such allocation and copy per block.
  let size = 1 + 4 + header.length + 4 + 1;
  for (const tx of b.txs) size += 4 + tx.length;
  const messages = b.results.map((res) => (res.ok ? null : resultMessageBytes(res)));
  for (const m of messages) size += m === null ? 1 : 1 + 4 + m.length;
  const cert = b.parentCommit;
  if (cert !== null) size += 8 + HASH_BYTES + 4 + cert.signatures.length * (4 + SIGNATURE_BYTES);
  const w = new Writer(size);
  w.u8(BLOCK_VERSION).bytes(header).u32(b.txs.length);
  for (const tx of b.txs) w.bytes(tx);
  for (let i = 0; i < b.results.length; i++) writeResult(w, b.results[i]!, messages[i] ?? undefined);
  if (cert === null) w.u8(0);
  else writeCert(w.u8(1), cert);
  // A signature of another length would make the size above wrong; finish() copes with that.
  return w.length === size ? w.written() : w.finish();
}

export function decodeBlock(bytes: Uint8Array): Result<Block> {
  return decodeWith(bytes, BLOCK_BYTES_MAX, (r) => {
    const version = r.u8('version');
    if (version !== BLOCK_VERSION)
      throw new DecodeError('bad-version', `block version ${version}`, 'version');
    const hdr = decodeHeader(r.bytes(1024, 'header'));
    if (!hdr.ok) throw hdr.error;
    const header = hdr.value;
    const n = r.count(BLOCK_TXS_MAX, 'txs.count');
    if (n !== header.txCount) throw new DecodeError('bad-length', `${n} txs, header says ${header.txCount}`);
    // Each tx costs at least its 4-byte length prefix plus a result tag: refuse a claimed count
    // the input cannot hold before building anything for it.
    if (n * 5 > r.remaining)
      throw new DecodeError('truncated', `${n} txs cannot fit in ${r.remaining} bytes`, 'txs');
    const txs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) txs.push(r.bytes(TX_BYTES_MAX, `txs[${i}]`));
    const results: TxResult[] = [];
    for (let i = 0; i < n; i++) results.push(readResult(r, `results[${i}]`));
    const flag = r.u8('parentCommit.flag');
    if (flag > 1) throw new DecodeError('bad-tag', `parentCommit flag ${flag}`, 'parentCommit');
    return { header, txs, results, parentCommit: flag === 1 ? readCert(r) : null };
  });
}

/**
 * Checks that a block's body matches its header (tx count, tx root, results hash) and that
 * its parent commit, if any, is for the previous height. Used before a block is written and
 * after one is read or received from a peer.
 */
export function checkBlockBody(b: Block): Result<void, string> {
  const h = b.header;
  if (b.txs.length !== h.txCount || b.results.length !== h.txCount)
    return err('tx count differs from header');
  if (!bytesEqual(merkleRoot(b.txs.map(txHash)), h.txRoot)) return err('txRoot does not match txs');
  if (!bytesEqual(resultsHash(b.results), h.resultsHash)) return err('resultsHash does not match results');
  if (b.parentCommit !== null) {
    if (b.parentCommit.height !== h.height - 1n) return err('parentCommit is not for the previous height');
    if (!bytesEqual(b.parentCommit.blockHash, h.prevHash)) return err('parentCommit is not for prevHash');
  }
  return ok(undefined);
}
