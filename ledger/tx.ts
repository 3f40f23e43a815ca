// Transactions: the canonical binary encoding (which defines both the signed bytes and the
// tx hash), signing and verification, and the JSON form used by the REST API.
// The byte layout is documented in docs/ledger.md; test/vectors/tx.json pins it.
import crypto from 'node:crypto';
import { z } from 'zod';
import { ADDRESS_BYTES } from './address.js';
import {
  DecodeError,
  decodeWith,
  err,
  fromHex,
  ok,
  type Reader,
  type Result,
  toHex,
  Writer,
} from './codec/binary.js';
import { SIGNATURE_BYTES, sha256, sign, verify, verifyParts } from './keys.js';

export type TxPayload =
  | { type: 'transfer'; to: Uint8Array; amount: bigint }
  | { type: 'kv.put'; key: Uint8Array; value: Uint8Array }
  | { type: 'kv.delete'; key: Uint8Array }
  | { type: 'kv.cas'; key: Uint8Array; expectedVersion: bigint; value: Uint8Array };
export type TxType = TxPayload['type'];

export interface UnsignedTx {
  chainId: string;
  from: Uint8Array;
  nonce: bigint;
  payload: TxPayload;
}
export interface SignedTx extends UnsignedTx {
  signature: Uint8Array;
}

export const TX_VERSION = 1;
/** Largest encoded transaction accepted anywhere (mempool, batch, block). */
export const TX_BYTES_MAX = 64 * 1024;
export const CHAIN_ID_BYTES_MAX = 64;
export const KV_KEY_BYTES_MAX = 256;
export const KV_VALUE_BYTES_MAX = 32 * 1024;
export const U64_MAX = (1n << 64n) - 1n;

/** Prepended to the signed bytes so a tx signature can never be replayed as another message type. */
export const TX_SIGNING_DOMAIN = new TextEncoder().encode('hybster/tx/v1');

export const TX_TYPE_TAGS: Record<TxType, number> = { transfer: 1, 'kv.put': 2, 'kv.delete': 3, 'kv.cas': 4 };

function writeBody(w: Writer, tx: UnsignedTx): void {
  const chainId = new TextEncoder().encode(tx.chainId);
  if (chainId.length === 0 || chainId.length > CHAIN_ID_BYTES_MAX) throw new RangeError('chainId length');
  if (tx.from.length !== ADDRESS_BYTES) throw new RangeError('from must be 32 bytes');
  w.u8(TX_VERSION).bytes(chainId).raw(tx.from).u64(tx.nonce);
  const p = tx.payload;
  w.u8(TX_TYPE_TAGS[p.type]);
  switch (p.type) {
    case 'transfer':
      if (p.to.length !== ADDRESS_BYTES) throw new RangeError('to must be 32 bytes');
      w.raw(p.to).u64(p.amount);
      break;
    case 'kv.put':
      writeKey(w, p.key);
      writeValue(w, p.value);
      break;
    case 'kv.delete':
      writeKey(w, p.key);
      break;
    case 'kv.cas':
      writeKey(w, p.key);
      w.u64(p.expectedVersion);
      writeValue(w, p.value);
      break;
  }
}

function writeKey(w: Writer, key: Uint8Array): void {
  if (key.length === 0 || key.length > KV_KEY_BYTES_MAX)
    throw new RangeError(`kv key must be 1..${KV_KEY_BYTES_MAX} bytes`);
  w.bytes(key);
}
function writeValue(w: Writer, value: Uint8Array): void {
  if (value.length > KV_VALUE_BYTES_MAX) throw new RangeError(`kv value exceeds ${KV_VALUE_BYTES_MAX} bytes`);
  w.bytes(value);
}

/** The exact bytes an Ed25519 signature covers: domain tag, then the encoding without the signature. */
export function signingBytes(tx: UnsignedTx): Uint8Array {
  const w = new Writer(128);
  w.raw(TX_SIGNING_DOMAIN);
  writeBody(w, tx);
  return w.finish();
}

/** Throws RangeError on a tx that cannot be encoded (oversized field, wrong key length). */
export function encodeTx(tx: SignedTx): Uint8Array {
  if (tx.signature.length !== SIGNATURE_BYTES) throw new RangeError('signature must be 64 bytes');
  const w = new Writer(160);
  writeBody(w, tx);
  w.raw(tx.signature);
  if (w.length > TX_BYTES_MAX) throw new RangeError(`tx is ${w.length} bytes, limit ${TX_BYTES_MAX}`);
  return w.finish();
}

function readKey(r: Reader): Uint8Array {
  const key = r.bytes(KV_KEY_BYTES_MAX, 'payload.key');
  if (key.length === 0) throw new DecodeError('bad-value', 'payload.key is empty', 'payload.key');
  return key;
}

function readTx(r: Reader): SignedTx {
  const version = r.u8('version');
  if (version !== TX_VERSION) throw new DecodeError('bad-version', `tx version ${version}`, 'version');
  const chainId = r.string(CHAIN_ID_BYTES_MAX, 'chainId');
  if (chainId.length === 0) throw new DecodeError('bad-value', 'chainId is empty', 'chainId');
  const from = r.raw(ADDRESS_BYTES, 'from');
  const nonce = r.u64('nonce');
  const tag = r.u8('type');
  let payload: TxPayload;
  switch (tag) {
    case 1:
      payload = { type: 'transfer', to: r.raw(ADDRESS_BYTES, 'payload.to'), amount: r.u64('payload.amount') };
      break;
    case 2:
      payload = { type: 'kv.put', key: readKey(r), value: r.bytes(KV_VALUE_BYTES_MAX, 'payload.value') };
      break;
    case 3:
      payload = { type: 'kv.delete', key: readKey(r) };
      break;
    case 4:
      payload = {
        type: 'kv.cas',
        key: readKey(r),
        expectedVersion: r.u64('payload.expectedVersion'),
        value: r.bytes(KV_VALUE_BYTES_MAX, 'payload.value'),
      };
      break;
    default:
      throw new DecodeError('bad-tag', `unknown tx type ${tag}`, 'type');
  }
  const signature = r.raw(SIGNATURE_BYTES, 'signature');
  return { chainId, from, nonce, payload, signature };
}

export interface DecodeTxOptions {
  /** When set, a tx for another chain is refused with a DecodeError on field `chainId`. */
  chainId?: string;
  /**
   * The tx's byte fields (from, signature, to, key, value) are views into `bytes`, not copies
   * (ReaderOptions.views): up to five arrays and their buffers fewer per tx. Only when `bytes`
   * never changes afterwards and the decoded tx does not outlive whatever holds `bytes` (or
   * holding `bytes` that long is fine): every field keeps all of `bytes`' buffer alive.
   */
  views?: boolean;
}

const VIEWS = { views: true } as const;

/** Never throws. Rejects truncated, oversized, unknown-type, trailing-byte and (optionally) wrong-chain input. */
export function decodeTx(bytes: Uint8Array, opts: DecodeTxOptions = {}): Result<SignedTx> {
  const res = decodeWith(bytes, TX_BYTES_MAX, readTx, opts.views === true ? VIEWS : undefined);
  if (res.ok && opts.chainId !== undefined && res.value.chainId !== opts.chainId) {
    return err(
      new DecodeError('bad-value', `chainId "${res.value.chainId}" is not "${opts.chainId}"`, 'chainId'),
    );
  }
  return res;
}

export const txHash = (encodedTx: Uint8Array): Uint8Array => sha256(encodedTx);

/**
 * A tx's hash and its hex from one SHA-256. On Node 20 crypto.hash's 'hex' output costs
 * ~0.3 us for a 150-byte tx where its 'buffer' output costs ~0.8 us, and turning the hex
 * back into bytes (~0.25 us) is cheaper than hex-encoding a Buffer (~0.35 us): 0.55 us
 * against 1.6 us per tx on every path that needs both (mempool intake, execution).
 */
export function txHashWithHex(encodedTx: Uint8Array): { hash: Uint8Array; hashHex: string } {
  const hash = new Uint8Array(32);
  return { hash, hashHex: txHashHexInto(encodedTx, hash, 0) };
}

/** The tx hash as hex alone: for a caller that may find the bytes at hand (see hashOfHex). */
export const txHashHex = (encodedTx: Uint8Array): string => crypto.hash('sha256', encodedTx, 'hex');

/** The bytes of a hash hex from txHashHex (trusted: not validated). */
export function hashOfHex(hashHex: string): Uint8Array {
  const hash = new Uint8Array(32);
  hexInto(hashHex, hash, 0);
  return hash;
}

/**
 * txHashWithHex writing the hash into `out` at `offset` and returning its hex: a block's
 * hashes then share one array (a view costs less than 32 bytes of their own, see startPrecheck).
 */
export function txHashHexInto(encodedTx: Uint8Array, out: Uint8Array, offset: number): string {
  const hashHex = crypto.hash('sha256', encodedTx, 'hex');
  hexInto(hashHex, out, offset);
  return hashHex;
}

/** Value of each hex digit by char code ('0'-'9', 'a'-'f'; crypto.hash's hex is lowercase). */
const HEX_DIGIT = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX_DIGIT[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_DIGIT[97 + i] = 10 + i;

/**
 * Writes the 32 bytes of a SHA-256 hex digest (trusted: crypto.hash made it) at out[offset].
 * Decoded here: `new Uint8Array(Buffer.from(hex, 'hex'))` made a Buffer view into the shared
 * 8 KB pool (and a fresh pool every 256 hashes) only to copy it out again (a view would pin
 * the slab as long as the hash lives, in a mempool entry or a cache). A 32-byte array of its
 * own lives on V8's heap: no backing store to allocate, account for and free.
 */
function hexInto(hex: string, out: Uint8Array, offset: number): void {
  for (let i = 0, j = 0; i < 32; i++, j += 2) {
    out[offset + i] =
      ((HEX_DIGIT[hex.charCodeAt(j)] as number) << 4) | (HEX_DIGIT[hex.charCodeAt(j + 1)] as number);
  }
}

/**
 * The signed bytes of an already-encoded tx without decoding it again: the domain tag
 * followed by everything but the trailing signature. Valid only for bytes decodeTx accepted.
 */
export function signingBytesOfEncoded(encodedTx: Uint8Array): Uint8Array {
  const out = new Uint8Array(TX_SIGNING_DOMAIN.length + encodedTx.length - SIGNATURE_BYTES);
  out.set(TX_SIGNING_DOMAIN, 0);
  out.set(encodedTx.subarray(0, encodedTx.length - SIGNATURE_BYTES), TX_SIGNING_DOMAIN.length);
  return out;
}

/**
 * The signed bytes of an encoded tx without its signature: a caller that can take the message
 * in two parts (the verify pool's SignatureCheck.messagePrefix) packs them straight from the
 * tx. A view into `encodedTx`.
 */
export const signedBodyOfEncoded = (encodedTx: Uint8Array): Uint8Array =>
  encodedTx.subarray(0, encodedTx.length - SIGNATURE_BYTES);

/** Largest signed message of a tx: the domain tag and an encoding of at most TX_BYTES_MAX. */
const SIGNED_BYTES_MAX = TX_SIGNING_DOMAIN.length + TX_BYTES_MAX;

/**
 * verify(signature, signingBytesOfEncoded(encodedTx), from) without a new array per call
 * (keys.ts verifyParts). Valid only for bytes decodeTx accepted (`signature` and `from` from
 * their decoding).
 */
export function verifyEncodedTx(encodedTx: Uint8Array, signature: Uint8Array, from: Uint8Array): boolean {
  if (encodedTx.length < SIGNATURE_BYTES) return false;
  if (TX_SIGNING_DOMAIN.length + encodedTx.length - SIGNATURE_BYTES > SIGNED_BYTES_MAX) return false;
  return verifyParts(signature, TX_SIGNING_DOMAIN, signedBodyOfEncoded(encodedTx), from);
}

export function signTx(tx: UnsignedTx, secretKey: Uint8Array): SignedTx {
  return { ...tx, signature: sign(signingBytes(tx), secretKey) };
}

export function verifyTx(tx: SignedTx): boolean {
  let msg: Uint8Array;
  try {
    msg = signingBytes(tx);
  } catch {
    return false;
  }
  return verify(tx.signature, msg, tx.from);
}

/** Why a tx is refused before ordering (mempool, REST). Execution uses the richer TxResult codes. */
export type TxRejection = { code: 'malformed' | 'wrong-chain' | 'bad-signature'; message: string };

/**
 * Everything that can be checked about a tx without state: decoding, chain id, signature.
 * The mempool and the REST API use this; execution repeats it (a faulty leader may order anything).
 */
export function checkTx(
  bytes: Uint8Array,
  chainId: string,
): Result<{ tx: SignedTx; hash: Uint8Array }, TxRejection> {
  const dec = decodeTx(bytes);
  if (!dec.ok) return err({ code: 'malformed', message: dec.error.message });
  if (dec.value.chainId !== chainId) {
    return err({ code: 'wrong-chain', message: `chainId "${dec.value.chainId}" is not "${chainId}"` });
  }
  if (!verifyEncodedTx(bytes, dec.value.signature, dec.value.from)) {
    return err({ code: 'bad-signature', message: 'signature does not verify against from' });
  }
  return ok({ tx: dec.value, hash: txHash(bytes) });
}

// ---- JSON form (REST API): bytes as lowercase hex, u64 as decimal strings. ----

const hex = (bytesMin: number, bytesMax: number) =>
  z
    .string()
    .regex(/^([0-9a-fA-F]{2})*$/, 'must be an even number of hex chars')
    .refine((s) => s.length / 2 >= bytesMin && s.length / 2 <= bytesMax, {
      message:
        bytesMin === bytesMax
          ? `must be ${bytesMin * 2} hex chars`
          : `must be ${bytesMin}..${bytesMax} bytes`,
    });
// zod 4 runs refinements even after the regex check failed, so the refinement re-tests
// the pattern before calling BigInt (which throws on non-decimal text).
const U64_DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const u64String = z
  .string()
  .regex(U64_DECIMAL, 'must be a decimal integer string')
  .refine((s) => U64_DECIMAL.test(s) && BigInt(s) <= U64_MAX, { message: 'exceeds u64' });

export const TxPayloadJsonSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('transfer'), to: hex(32, 32), amount: u64String }),
  z.object({ type: z.literal('kv.put'), key: hex(1, KV_KEY_BYTES_MAX), value: hex(0, KV_VALUE_BYTES_MAX) }),
  z.object({ type: z.literal('kv.delete'), key: hex(1, KV_KEY_BYTES_MAX) }),
  z.object({
    type: z.literal('kv.cas'),
    key: hex(1, KV_KEY_BYTES_MAX),
    expectedVersion: u64String,
    value: hex(0, KV_VALUE_BYTES_MAX),
  }),
]);
export const TxJsonSchema = z.object({
  chainId: z.string().min(1).max(CHAIN_ID_BYTES_MAX),
  from: hex(32, 32),
  nonce: u64String,
  payload: TxPayloadJsonSchema,
  signature: hex(64, 64),
});
export type TxJson = z.infer<typeof TxJsonSchema>;
export type TxPayloadJson = z.infer<typeof TxPayloadJsonSchema>;

export function payloadToJson(p: TxPayload): TxPayloadJson {
  switch (p.type) {
    case 'transfer':
      return { type: p.type, to: toHex(p.to), amount: p.amount.toString() };
    case 'kv.put':
      return { type: p.type, key: toHex(p.key), value: toHex(p.value) };
    case 'kv.delete':
      return { type: p.type, key: toHex(p.key) };
    case 'kv.cas':
      return {
        type: p.type,
        key: toHex(p.key),
        expectedVersion: p.expectedVersion.toString(),
        value: toHex(p.value),
      };
  }
}

export function txToJson(tx: SignedTx): TxJson {
  return {
    chainId: tx.chainId,
    from: toHex(tx.from),
    nonce: tx.nonce.toString(),
    payload: payloadToJson(tx.payload),
    signature: toHex(tx.signature),
  };
}

/** Error messages name the field, e.g. "payload.amount: must be a decimal integer string". */
export function txFromJson(j: unknown): Result<SignedTx, DecodeError> {
  const parsed = TxJsonSchema.safeParse(j);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue ? issue.path.join('.') : '';
    return err(new DecodeError('bad-value', `${field || '(root)'}: ${issue?.message ?? 'invalid'}`, field));
  }
  const v = parsed.data;
  const p = v.payload;
  let payload: TxPayload;
  switch (p.type) {
    case 'transfer':
      payload = { type: p.type, to: fromHex(p.to), amount: BigInt(p.amount) };
      break;
    case 'kv.put':
      payload = { type: p.type, key: fromHex(p.key), value: fromHex(p.value) };
      break;
    case 'kv.delete':
      payload = { type: p.type, key: fromHex(p.key) };
      break;
    case 'kv.cas':
      payload = {
        type: p.type,
        key: fromHex(p.key),
        expectedVersion: BigInt(p.expectedVersion),
        value: fromHex(p.value),
      };
      break;
  }
  const tx: SignedTx = {
    chainId: v.chainId,
    from: fromHex(v.from),
    nonce: BigInt(v.nonce),
    payload,
    signature: fromHex(v.signature),
  };
  if (new TextEncoder().encode(tx.chainId).length > CHAIN_ID_BYTES_MAX) {
    return err(new DecodeError('oversized', `chainId: exceeds ${CHAIN_ID_BYTES_MAX} bytes`, 'chainId'));
  }
  return ok(tx);
}
