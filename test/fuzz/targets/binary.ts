// The shared codec primitives under a small record that uses every one of them:
// a bug in Reader's bounds checks shows up here before it shows up in every codec.
import fc from 'fast-check';
import { decodeWith, type Reader, type Result, Writer } from '../../../ledger/codec/binary.js';
import { decoderTarget, type FuzzTarget } from '../harness.js';

interface Sample {
  tag: 1 | 2;
  a: number;
  b: number;
  c: bigint;
  d: Uint8Array;
  e: string;
  list: Uint8Array[];
}

const LIMITS = { d: 64, e: 32, list: 8, item: 16, input: 1024 };

function encode(s: Sample): Uint8Array {
  const w = new Writer(16).u8(s.tag).u16(s.a).u32(s.b).u64(s.c).bytes(s.d).string(s.e).u32(s.list.length);
  for (const item of s.list) w.bytes(item);
  return w.finish();
}

function decode(bytes: Uint8Array): Result<Sample> {
  return decodeWith(bytes, LIMITS.input, (r: Reader) => {
    const tag = r.u8('tag');
    if (tag !== 1 && tag !== 2) throw new RangeError(`bad tag ${tag}`);
    const a = r.u16('a');
    const b = r.u32('b');
    const c = r.u64('c');
    const d = r.bytes(LIMITS.d, 'd');
    const e = r.string(LIMITS.e, 'e');
    const n = r.count(LIMITS.list, 'list');
    const list: Uint8Array[] = [];
    for (let i = 0; i < n; i++) list.push(r.bytes(LIMITS.item, 'item'));
    return { tag, a, b, c, d, e, list };
  });
}

const sample: fc.Arbitrary<Sample> = fc.record({
  tag: fc.constantFrom(1 as const, 2 as const),
  a: fc.nat({ max: 0xffff }),
  b: fc.nat({ max: 0xffffffff }),
  c: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  d: fc.uint8Array({ maxLength: LIMITS.d }),
  // Short enough that its UTF-8 form stays within the limit.
  e: fc.string({ maxLength: 8 }),
  list: fc.array(fc.uint8Array({ maxLength: LIMITS.item }), { maxLength: LIMITS.list }),
});

export const binaryTargets: FuzzTarget[] = [
  decoderTarget({
    name: 'codec.binary',
    valid: sample.map(encode),
    inputBytesMax: LIMITS.input,
    decode,
    encode,
  }),
];
