// The fuzz-target registry's shape and the properties every decoder must keep on
// hostile input: never throw past its boundary, reject with a typed error, keep
// what it returns bounded by what it read, not alias the input buffer (peers can
// rewrite an RDMA ring after the fact), and round-trip exactly what it accepts.
import fc from 'fast-check';
import { hostileInputs } from './mutate.js';

export type Outcome = 'accepted' | 'rejected';

/** One fuzz target: hostile inputs and a run that throws FuzzViolation when a property breaks. */
export interface FuzzTarget {
  readonly name: string;
  readonly inputs: fc.Arbitrary<Uint8Array>;
  /** Valid inputs alone: the test suite checks that they are accepted, so the fuzzer reaches past the first check. */
  readonly valid: fc.Arbitrary<Uint8Array>;
  run(bytes: Uint8Array): Outcome | Promise<Outcome>;
  /** run returns a promise (the target drives real asynchronous code). */
  async?: boolean;
  /** One input just above the target's size limit; it must be refused. Null when the target has no single limit. */
  oversized(): Uint8Array | null;
  /** Whether `valid` inputs must be accepted (default true). False for protocols a stranger cannot complete. */
  acceptsValid?: boolean;
}

export class FuzzViolation extends Error {
  override readonly name = 'FuzzViolation';
  constructor(
    readonly property:
      | 'threw'
      | 'untyped-error'
      | 'round-trip'
      | 'aliasing'
      | 'unbounded'
      | 'accepted-oversized',
    message: string,
  ) {
    super(`${property}: ${message}`);
  }
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface DecoderSpec<T> {
  name: string;
  valid: fc.Arbitrary<Uint8Array>;
  /** The decoder's own input limit (bytes). */
  inputBytesMax: number;
  decode(bytes: Uint8Array): DecodeResult<T>;
  /** Canonical encoder: encode(decode(b)) must equal b for every accepted b. */
  encode(value: T): Uint8Array;
  /** Largest random-bytes input the fuzzer generates (defaults to 4 KiB). */
  randomBytesMax?: number;
  /**
   * The decoder documents that it returns views into its input (zero-copy); the
   * no-aliasing property is skipped. Only for inputs the caller already owns privately.
   */
  returnsViews?: boolean;
}

/** A typed error is an Error with a string `code` (DecodeError and every module's own error classes). */
export function isTypedError(e: unknown): boolean {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Bytes a decoded value holds: byte arrays by length, strings by length, one per
 * array element. A decoder that allocates what a length prefix claims instead of
 * what it read shows up here.
 */
export function retainedSize(value: unknown, depth = 0): number {
  if (depth > 64) throw new FuzzViolation('unbounded', 'decoded value nested deeper than 64 levels');
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) {
    let n = value.length;
    for (const v of value) n += retainedSize(v, depth + 1);
    return n;
  }
  if (value !== null && typeof value === 'object') {
    let n = 0;
    for (const v of Object.values(value)) n += retainedSize(v, depth + 1);
    return n;
  }
  return 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const hex = (b: Uint8Array, max = 64): string =>
  Buffer.from(b.subarray(0, max)).toString('hex') + (b.length > max ? `…(${b.length} B)` : '');

/** Builds a target for a `decode(bytes): Result` / `encode(value)` pair. */
export function decoderTarget<T>(spec: DecoderSpec<T>): FuzzTarget {
  const check = (bytes: Uint8Array): Outcome => {
    // Decode a private copy, so we can scribble over it afterwards. (Not bytes.slice():
    // on a Buffer that is a view, not a copy.)
    const input = new Uint8Array(bytes);
    let res: DecodeResult<T>;
    try {
      res = spec.decode(input);
    } catch (e) {
      throw new FuzzViolation('threw', `decoder threw ${describe(e)} on ${hex(bytes)}`);
    }
    if (!res.ok) {
      if (!isTypedError(res.error)) {
        throw new FuzzViolation('untyped-error', `rejection is not a typed error: ${describe(res.error)}`);
      }
      return 'rejected';
    }
    if (bytes.length > spec.inputBytesMax) {
      throw new FuzzViolation(
        'accepted-oversized',
        `accepted ${bytes.length} B, limit ${spec.inputBytesMax}`,
      );
    }
    const held = retainedSize(res.value);
    if (held > 2 * bytes.length + 64) {
      throw new FuzzViolation(
        'unbounded',
        `decoded value holds ${held} units from ${bytes.length} input bytes`,
      );
    }
    if (!spec.returnsViews) input.fill(0xa5);
    let again: Uint8Array;
    try {
      again = spec.encode(res.value);
    } catch (e) {
      throw new FuzzViolation('round-trip', `encode threw on an accepted value: ${describe(e)}`);
    }
    if (!equalBytes(again, bytes)) {
      // Either the encoding is not canonical or the value still points into the input buffer.
      const clean = spec.decode(new Uint8Array(bytes));
      const kind = clean.ok && equalBytes(spec.encode(clean.value), bytes) ? 'aliasing' : 'round-trip';
      throw new FuzzViolation(kind, `accepted ${hex(bytes)} but re-encodes to ${hex(again)}`);
    }
    return 'accepted';
  };
  // Plain copies: encoders may return pooled Buffers, whose slice() does not copy.
  const valid = spec.valid.map((b) => new Uint8Array(b));
  return {
    name: spec.name,
    valid,
    inputs: hostileInputs(valid, spec.randomBytesMax ?? 4096),
    run: check,
    oversized: () => new Uint8Array(spec.inputBytesMax + 1),
  };
}

export function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}(${(e as { code?: unknown }).code ?? ''}): ${e.message}`;
  return String(e);
}

type Counts = { accepted: number; rejected: number };

/** The property fast-check drives for a synchronous target. */
export function targetProperty(t: FuzzTarget, counts?: Counts) {
  return fc.property(t.inputs, (bytes) => {
    const outcome = t.run(bytes);
    if (typeof outcome !== 'string') throw new Error(`${t.name} is asynchronous: use checkTarget`);
    if (counts) counts[outcome]++;
  });
}

/** Runs fast-check over any target, synchronous or not. */
export async function checkTarget(
  t: FuzzTarget,
  params: fc.Parameters<[Uint8Array]>,
  counts?: Counts,
): Promise<fc.RunDetails<[Uint8Array]>> {
  if (!t.async) return fc.check(targetProperty(t, counts), params);
  const prop = fc.asyncProperty(t.inputs, async (bytes) => {
    const outcome = await t.run(bytes);
    if (counts) counts[outcome]++;
  });
  return fc.check(prop, params);
}
