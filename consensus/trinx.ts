// TrInX: the trusted counter subsystem of Hybster. Each (validator, pillar) owns one
// instance; it can only fail by crashing, so a certificate it issues proves that the
// issuer assigned that counter value exactly once. The software implementation keeps
// the shared key in process memory: it protects against faulty replica logic, not
// against a host that reads the key. An SGX/TDX/TPM-backed implementation can replace
// it behind the `Trinx` interface.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { err, ok, type Result } from '../ledger/codec/binary.js';

/** A counter value: (view, order), compared lexicographically; never packed into one word. */
export interface CounterValue {
  readonly view: bigint;
  readonly order: bigint;
}

/**
 * ORDER: prepares, commits and view-change/ack links. NEWVIEW: one NEW-VIEW per view.
 * ACK: reserved. TOP: (0, top), one past the highest order the replica ever certified; every
 * prepare and commit proves TOP covers its order, so no later VIEW-CHANGE can claim less.
 */
export const Counter = { ORDER: 0, NEWVIEW: 1, ACK: 2, TOP: 3 } as const;
export type CounterId = (typeof Counter)[keyof typeof Counter];
export const COUNTER_IDS: readonly CounterId[] = [Counter.ORDER, Counter.NEWVIEW, Counter.ACK, Counter.TOP];

/** Who issued a certificate: bound inside every MAC so certificates cannot be passed off as another's. */
export interface Issuer {
  readonly validator: number;
  readonly pillar: number;
}

/** A counter certificate. `prev` is set for continuing certificates, null for independent ones. */
export interface CounterCert {
  readonly issuer: Issuer;
  readonly counter: CounterId;
  readonly prev: CounterValue | null;
  readonly value: CounterValue;
  readonly mac: Uint8Array;
}

/** A trusted MAC with no counter (checkpoints, view-change contents). */
export interface PlainCert {
  readonly issuer: Issuer;
  readonly mac: Uint8Array;
}

export type TrinxRefusal = 'counter-not-monotonic' | 'bad-digest';

export interface TrinxState {
  readonly counters: readonly CounterValue[];
}

export interface Trinx {
  readonly issuer: Issuer;
  /** Certifies `value` only if it is strictly greater than the counter; then the counter becomes `value`. */
  certifyIndependent(
    counter: CounterId,
    value: CounterValue,
    digest: Uint8Array,
  ): Result<CounterCert, TrinxRefusal>;
  /** Certifies `value` only if it is >= the counter; the certificate binds the previous value (no gap). */
  certifyContinuing(
    counter: CounterId,
    value: CounterValue,
    digest: Uint8Array,
  ): Result<CounterCert, TrinxRefusal>;
  certifyPlain(digest: Uint8Array): PlainCert;
  /** Verification never changes state. */
  verifyIndependent(cert: CounterCert, digest: Uint8Array): boolean;
  verifyContinuing(cert: CounterCert, digest: Uint8Array): boolean;
  verifyPlain(cert: PlainCert, digest: Uint8Array): boolean;
  current(counter: CounterId): CounterValue;
  /** Counter values to persist; restoring from an older export would let a restart reuse values. */
  exportState(): TrinxState;
}

export const MAC_BYTES = 32;
export const DIGEST_BYTES = 32;
const U64_MAX = (1n << 64n) - 1n;
const ZERO: CounterValue = { view: 0n, order: 0n };

export function compareCounter(a: CounterValue, b: CounterValue): number {
  if (a.view !== b.view) return a.view < b.view ? -1 : 1;
  if (a.order !== b.order) return a.order < b.order ? -1 : 1;
  return 0;
}

export const counterEqual = (a: CounterValue, b: CounterValue): boolean => compareCounter(a, b) === 0;

const KIND_INDEPENDENT = 1;
const KIND_CONTINUING = 2;
const KIND_PLAIN = 3;
const DOMAIN = Buffer.from('hybster-trinx-v1', 'utf8');

/** HMAC-SHA256 software TrInX. The key is held privately and never serialized. */
export class SoftwareTrinx implements Trinx {
  // A KeyObject: about 20% cheaper per MAC than a raw Buffer key, and it never serializes its bytes.
  readonly #key: KeyObject;
  protected readonly counters: CounterValue[];

  constructor(
    key: Uint8Array,
    readonly issuer: Issuer,
    state?: TrinxState,
  ) {
    if (key.length < 16) throw new RangeError('TrInX key must be at least 16 bytes');
    this.#key = createSecretKey(Buffer.from(key));
    this.counters = COUNTER_IDS.map((id) => state?.counters[id] ?? ZERO);
  }

  current(counter: CounterId): CounterValue {
    return this.counters[counter]!;
  }

  exportState(): TrinxState {
    return { counters: [...this.counters] };
  }

  certifyIndependent(
    counter: CounterId,
    value: CounterValue,
    digest: Uint8Array,
  ): Result<CounterCert, TrinxRefusal> {
    if (digest.length !== DIGEST_BYTES) return err('bad-digest');
    if (compareCounter(value, this.counters[counter]!) <= 0) return err('counter-not-monotonic');
    return ok(this.issue(counter, null, value, digest));
  }

  certifyContinuing(
    counter: CounterId,
    value: CounterValue,
    digest: Uint8Array,
  ): Result<CounterCert, TrinxRefusal> {
    if (digest.length !== DIGEST_BYTES) return err('bad-digest');
    const prev = this.counters[counter]!;
    if (compareCounter(value, prev) < 0) return err('counter-not-monotonic');
    return ok(this.issue(counter, prev, value, digest));
  }

  certifyPlain(digest: Uint8Array): PlainCert {
    return { issuer: this.issuer, mac: this.mac(KIND_PLAIN, this.issuer, 0, null, ZERO, digest) };
  }

  verifyIndependent(cert: CounterCert, digest: Uint8Array): boolean {
    if (cert.prev !== null) return false;
    return this.check(
      cert.mac,
      this.mac(KIND_INDEPENDENT, cert.issuer, cert.counter, null, cert.value, digest),
    );
  }

  verifyContinuing(cert: CounterCert, digest: Uint8Array): boolean {
    if (cert.prev === null || compareCounter(cert.value, cert.prev) < 0) return false;
    return this.check(
      cert.mac,
      this.mac(KIND_CONTINUING, cert.issuer, cert.counter, cert.prev, cert.value, digest),
    );
  }

  verifyPlain(cert: PlainCert, digest: Uint8Array): boolean {
    return this.check(cert.mac, this.mac(KIND_PLAIN, cert.issuer, 0, null, ZERO, digest));
  }

  /** Issues a certificate and advances the counter; subclasses in tests break the monotonicity check above it. */
  protected issue(
    counter: CounterId,
    prev: CounterValue | null,
    value: CounterValue,
    digest: Uint8Array,
  ): CounterCert {
    this.counters[counter] = value;
    const kind = prev === null ? KIND_INDEPENDENT : KIND_CONTINUING;
    return {
      issuer: this.issuer,
      counter,
      prev,
      value,
      mac: this.mac(kind, this.issuer, counter, prev, value, digest),
    };
  }

  private check(given: Uint8Array, expected: Uint8Array): boolean {
    return given.length === MAC_BYTES && timingSafeEqual(given, expected);
  }

  private mac(
    kind: number,
    issuer: Issuer,
    counter: number,
    prev: CounterValue | null,
    value: CounterValue,
    digest: Uint8Array,
  ): Uint8Array {
    if (digest.length !== DIGEST_BYTES) return new Uint8Array(MAC_BYTES);
    const head = Buffer.alloc(1 + 2 + 2 + 1 + 4 * 8);
    let at = head.writeUInt8(kind, 0);
    at = head.writeUInt16BE(issuer.validator & 0xffff, at);
    at = head.writeUInt16BE(issuer.pillar & 0xffff, at);
    at = head.writeUInt8(counter, at);
    for (const v of [prev?.view ?? 0n, prev?.order ?? 0n, value.view, value.order]) {
      at = head.writeBigUInt64BE(v < 0n || v > U64_MAX ? 0n : v, at);
    }
    const mac = createHmac('sha256', this.#key).update(DOMAIN).update(head).update(digest).digest();
    // A plain Uint8Array view, so certificates compare equal to decoded ones.
    return new Uint8Array(mac.buffer, mac.byteOffset, MAC_BYTES);
  }

  /** Never print the key. */
  toJSON(): object {
    return { issuer: this.issuer, counters: this.counters.map((c) => `${c.view}/${c.order}`) };
  }
}
