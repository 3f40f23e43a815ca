// Mutations of valid encodings. Random bytes alone rarely get past a decoder's
// first length check; small edits of valid inputs reach the deep branches, and the
// length-field overwrites aim straight at "allocate what the peer claims" bugs.
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip-bit'; at: number; bit: number }
  | { kind: 'set-byte'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'length-bomb'; at: number; value: number }
  | { kind: 'duplicate'; at: number; count: number }
  | { kind: 'append'; bytes: Uint8Array };

// Values a length prefix is most likely to be checked against badly.
const HOSTILE_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

const position = fc.nat({ max: 0xffff });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip-bit' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('set-byte' as const), at: position, value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant('length-bomb' as const),
    at: position,
    value: fc.oneof(fc.constantFrom(...HOSTILE_U32), fc.nat()),
  }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: position,
    count: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

/** Applies one mutation; positions wrap modulo the input length so every mutation lands. */
export function applyMutation(input: Uint8Array, m: Mutation): Uint8Array {
  const n = input.length;
  const at = n === 0 ? 0 : m.kind === 'append' ? n : m.at % n;
  switch (m.kind) {
    case 'flip-bit': {
      if (n === 0) return new Uint8Array(input);
      const out = new Uint8Array(input);
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'set-byte': {
      if (n === 0) return new Uint8Array(input);
      const out = new Uint8Array(input);
      out[at] = m.value;
      return out;
    }
    case 'truncate':
      return input.slice(0, at);
    case 'insert':
      return concat(input.subarray(0, at), m.bytes, input.subarray(at));
    case 'delete':
      return concat(input.subarray(0, at), input.subarray(Math.min(n, at + m.count)));
    case 'length-bomb': {
      // Overwrite four bytes in place with a big-endian u32, as a forged length prefix would.
      if (n < 4) return new Uint8Array(input);
      const out = new Uint8Array(input);
      const p = Math.min(at, n - 4);
      new DataView(out.buffer).setUint32(p, m.value >>> 0);
      return out;
    }
    case 'duplicate': {
      const end = Math.min(n, at + m.count);
      return concat(input.subarray(0, end), input.subarray(at, end), input.subarray(end));
    }
    case 'append':
      return concat(input, m.bytes);
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Hostile inputs derived from valid ones: the valid input itself, one to four
 * stacked mutations of it, a splice of two valid inputs, or plain random bytes.
 */
export function hostileInputs(
  valid: fc.Arbitrary<Uint8Array>,
  randomBytesMax: number,
): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { arbitrary: valid, weight: 1 },
    {
      arbitrary: fc
        .tuple(valid, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
        .map(([v, ms]) => ms.reduce(applyMutation, v)),
      weight: 6,
    },
    {
      arbitrary: fc
        .tuple(valid, valid, fc.nat(), fc.nat())
        .map(([a, b, i, j]) => concat(a.subarray(0, i % (a.length + 1)), b.subarray(j % (b.length + 1)))),
      weight: 1,
    },
    { arbitrary: fc.uint8Array({ maxLength: randomBytesMax }), weight: 2 },
  );
}
