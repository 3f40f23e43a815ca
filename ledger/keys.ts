// Ed25519 keys, signatures and the project's hash function.
//
// node:crypto is used for both because it measured faster than @noble on Node 20 here
// (bench/ledger.ts records the figures in its "primitives" section; at the time of writing,
// on the shared 2-core box: verify 7.0k/s node:crypto vs 0.48k/s noble; sign 19.8k/s vs 0.9k/s;
// SHA-256 of 65 bytes 331k/s vs 274k/s with createHash, about twice that with crypto.hash). Building a KeyObject from raw bytes costs about as
// much as a verification, so public KeyObjects are cached (bounded) by key bytes.
import crypto from 'node:crypto';

export interface KeyPair {
  /** 32-byte Ed25519 public key; also the account address. */
  publicKey: Uint8Array;
  /** 32-byte Ed25519 seed (RFC 8032 private key). */
  secretKey: Uint8Array;
}

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const HASH_BYTES = 32;

// DER prefixes that wrap a raw Ed25519 seed / public key (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Bound on cached public KeyObjects; one per active signer is the steady state. */
export const PUBLIC_KEY_CACHE_MAX = 65_536;
const publicKeyCache = new Map<string, crypto.KeyObject>();
const PRIVATE_KEY_CACHE_MAX = 4096;
const privateKeyCache = new Map<string, crypto.KeyObject>();

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function privateKeyObject(seed: Uint8Array): crypto.KeyObject {
  if (seed.length !== SECRET_KEY_BYTES) throw new RangeError(`secret key must be ${SECRET_KEY_BYTES} bytes`);
  const id = asBuffer(seed).toString('latin1');
  let key = privateKeyCache.get(id);
  if (key === undefined) {
    key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    if (privateKeyCache.size >= PRIVATE_KEY_CACHE_MAX) {
      const oldest = privateKeyCache.keys().next().value;
      if (oldest !== undefined) privateKeyCache.delete(oldest);
    }
    privateKeyCache.set(id, key);
  }
  return key;
}

function publicKeyObject(publicKey: Uint8Array): crypto.KeyObject {
  const id = asBuffer(publicKey).toString('latin1');
  let key = publicKeyCache.get(id);
  if (key === undefined) {
    key = crypto.createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_MAX) {
      // Drop the oldest entry (Map keeps insertion order).
      const oldest = publicKeyCache.keys().next().value;
      if (oldest !== undefined) publicKeyCache.delete(oldest);
    }
    publicKeyCache.set(id, key);
  }
  return key;
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const priv = privateKeyObject(seed);
  const spki = crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return { publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)), secretKey: Uint8Array.from(seed) };
}

export function generateKeyPair(): KeyPair {
  return keyPairFromSeed(new Uint8Array(crypto.randomBytes(SECRET_KEY_BYTES)));
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(crypto.sign(null, message, privateKeyObject(secretKey)));
}

/** Never throws: malformed keys or signatures simply do not verify. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return crypto.verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** Joined messages above this size get an array of their own instead of growing the scratch. */
const JOIN_SCRATCH_BYTES_MAX = 128 * 1024;
let joinScratch = new Uint8Array(512);

/**
 * verify() of the message `prefix` followed by `body`, without a new array per call: the
 * two are joined in one module scratch buffer, which node:crypto's synchronous verify has
 * read before returning, so reusing it is safe. (A tx signs a domain tag and its encoding.)
 */
export function verifyParts(
  signature: Uint8Array,
  prefix: Uint8Array,
  body: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  const n = prefix.length + body.length;
  let buf = joinScratch;
  if (n > buf.length) {
    let cap = buf.length * 2;
    while (cap < n) cap *= 2;
    buf = new Uint8Array(cap);
    if (cap <= JOIN_SCRATCH_BYTES_MAX) joinScratch = buf;
  }
  buf.set(prefix, 0);
  buf.set(body, prefix.length);
  return verify(signature, buf.subarray(0, n), publicKey);
}

// crypto.hash (one-shot, Node >= 20.12) measured about 2x faster than createHash() for the
// 32-100 byte inputs that dominate here (tx hashes, Merkle nodes), and on Node 20 its
// 'binary' (latin1) output turned into bytes about twice as fast again as its 'buffer'
// output (0.43 against 0.97 us for a 65-byte Merkle node). The bytes are copied out of
// Buffer's shared pool: hashes live in caches, and a view would pin a whole slab.
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.from(crypto.hash('sha256', data, 'binary'), 'binary'));
}

/** SHA-256 over the concatenation of several parts. */
export function sha256Parts(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const buf = Buffer.allocUnsafe(n);
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  return sha256(buf);
}
