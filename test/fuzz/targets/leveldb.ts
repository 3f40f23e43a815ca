// The LevelDB file formats the start-up integrity check parses (ledger/leveldb-files.ts):
// the bytes on our own disk are input too. A damaged file must produce a FormatError or
// a damage report, never an exception of another kind or an allocation it claims.
import fc from 'fast-check';
import { crc32c, FormatError, maskCrc, scanLog, snappyDecompress } from '../../../ledger/leveldb-files.js';
import { type FuzzTarget, FuzzViolation, type Outcome } from '../harness.js';
import { concat, hostileInputs } from '../mutate.js';

const BLOCK = 32768;
const HEADER = 7;

/** LevelDB's log writer: records fragmented across 32 KiB blocks, trailers zero-padded. */
export function encodeLog(records: Uint8Array[]): Uint8Array {
  const out: Uint8Array[] = [];
  let pos = 0;
  const push = (b: Uint8Array) => {
    out.push(b);
    pos += b.length;
  };
  for (const rec of records) {
    let off = 0;
    let first = true;
    do {
      const left = BLOCK - (pos % BLOCK);
      if (left < HEADER) {
        push(new Uint8Array(left));
        continue;
      }
      const n = Math.min(rec.length - off, left - HEADER);
      const last = off + n === rec.length;
      const type = first && last ? 1 : first ? 2 : last ? 4 : 3;
      const h = new Uint8Array(HEADER + n);
      h[4] = n & 0xff;
      h[5] = n >>> 8;
      h[6] = type;
      h.set(rec.subarray(off, off + n), HEADER);
      new DataView(h.buffer).setUint32(0, maskCrc(crc32c(h, 6, HEADER + n)), true);
      push(h);
      off += n;
      first = false;
    } while (off < rec.length);
  }
  return concat(...out);
}

const logArb = fc
  .array(
    fc.oneof(
      { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 29 },
      { arbitrary: fc.uint8Array({ minLength: 32_800, maxLength: 33_500 }), weight: 1 },
    ),
    {
      maxLength: 6,
    },
  )
  .map(encodeLog);

function runLog(bytes: Uint8Array): Outcome {
  let scan: ReturnType<typeof scanLog>;
  try {
    scan = scanLog(bytes);
  } catch (e) {
    throw new FuzzViolation('threw', `scanLog threw ${String(e)}`);
  }
  const held = scan.records.reduce((n, r) => n + r.length, 0);
  if (held > bytes.length) throw new FuzzViolation('unbounded', `${held} record bytes from ${bytes.length}`);
  if (scan.damage !== null || scan.tornTailAt !== null) return 'rejected';
  const again = encodeLog(scan.records);
  // Trailing zero padding after the last record is legal and not re-created.
  if (
    Buffer.compare(again, bytes.subarray(0, again.length)) !== 0 ||
    bytes.subarray(again.length).some((b) => b !== 0)
  ) {
    throw new FuzzViolation('round-trip', 'records read back do not re-encode to the file');
  }
  return 'accepted';
}

/** Snappy with literals only: a valid (if useless) compression of any bytes. */
function snappyLiterals(data: Uint8Array): Uint8Array {
  const parts: number[] = [];
  let n = data.length;
  do {
    parts.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  const out: Uint8Array[] = [Uint8Array.from(parts)];
  for (let i = 0; i < data.length; i += 60) {
    const chunk = data.subarray(i, i + 60);
    out.push(Uint8Array.of((chunk.length - 1) << 2), chunk);
  }
  return concat(...out);
}

const SNAPPY_OUT_MAX = 4096;
const snappyArb = fc.uint8Array({ maxLength: 600 }).map(snappyLiterals);

function runSnappy(bytes: Uint8Array): Outcome {
  try {
    const out = snappyDecompress(bytes, SNAPPY_OUT_MAX);
    if (out.length > SNAPPY_OUT_MAX) throw new FuzzViolation('unbounded', `decompressed to ${out.length} B`);
    return 'accepted';
  } catch (e) {
    if (e instanceof FuzzViolation) throw e;
    if (e instanceof FormatError) return 'rejected';
    throw new FuzzViolation('threw', `snappyDecompress threw ${String(e)}`);
  }
}

export const leveldbTargets: FuzzTarget[] = [
  {
    name: 'leveldb.log',
    valid: logArb,
    inputs: hostileInputs(logArb, 2048),
    run: runLog,
    oversized: () => null,
  },
  {
    name: 'leveldb.snappy',
    valid: snappyArb,
    inputs: hostileInputs(snappyArb, 512),
    run: runSnappy,
    oversized: () => null,
  },
];
