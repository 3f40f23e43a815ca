// Reads LevelDB's on-disk formats far enough to verify every checksum in them, without
// LevelDB: classic-level opens databases with paranoid checks off and reads without
// verify_checksums, so a flipped byte in a table can be served or a damaged log record
// silently dropped. This module finds such damage before the database is opened.
//
// Formats (leveldb/doc/log_format.md, table_format.md, db/version_edit.cc):
// - log files (*.log, MANIFEST-*): 32 KiB blocks of records, each with a 7-byte header
//   (masked CRC32C u32 LE over type + payload, length u16 LE, type u8).
// - tables (*.ldb, *.sst): blocks each followed by a 5-byte trailer (compression type u8,
//   masked CRC32C u32 LE over block + type); a 48-byte footer with the metaindex and index
//   block handles and a magic number. The index block's values are the data blocks' handles.
// - the MANIFEST's records are VersionEdits listing the live tables and their sizes.

export class FormatError extends Error {
  override readonly name = 'FormatError';
}

// ---- CRC32C (Castagnoli), as LevelDB stores it ----

// Slicing-by-8: eight tables, eight bytes per step (about 4x the byte-at-a-time loop;
// the whole data directory is checksummed at every start).
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++)
      t[k * 256 + i] = (t[(k - 1) * 256 + i]! >>> 8) ^ t[t[(k - 1) * 256 + i]! & 0xff]!;
  }
  return t;
})();

export function crc32c(data: Uint8Array, start = 0, end = data.length, init = 0): number {
  const t = CRC_TABLES;
  let c = ~init >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^
      t[2 * 256 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** LevelDB stores CRCs "masked" so a CRC of data that itself holds CRCs stays well distributed. */
export const maskCrc = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

const u32le = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

// ---- varints ----

class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos = 0,
    readonly end = buf.length,
  ) {}
  get done(): boolean {
    return this.pos >= this.end;
  }
  byte(): number {
    if (this.pos >= this.end) throw new FormatError('unexpected end of data');
    return this.buf[this.pos++]!;
  }
  /** Varints up to 64 bits; values above 2^53 lose precision, which only sequence numbers reach. */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new FormatError('varint longer than 10 bytes');
  }
  slice(n: number): Uint8Array {
    if (n > this.end - this.pos) throw new FormatError(`slice of ${n} bytes runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  lengthPrefixed(): Uint8Array {
    return this.slice(this.varint());
  }
}

// ---- snappy (block decompression; LevelDB compresses table blocks with it by default) ----

/** Decompresses one raw snappy block, refusing output above `outMax` before allocating it. */
export function snappyDecompress(input: Uint8Array, outMax: number): Uint8Array {
  const c = new Cursor(input);
  const n = c.varint();
  if (n > outMax) throw new FormatError(`snappy block claims ${n} bytes, limit ${outMax}`);
  const out = new Uint8Array(n);
  let o = 0;
  while (!c.done) {
    const tag = c.byte();
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const extra = len - 59;
        len = 0;
        for (let i = 0; i < extra; i++) len += c.byte() * 2 ** (8 * i);
      }
      len += 1;
      if (len > n - o) throw new FormatError('snappy literal overruns the output');
      out.set(c.slice(len), o);
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | c.byte();
    } else if (kind === 2) {
      len = (tag >>> 2) + 1;
      offset = c.byte() | (c.byte() << 8);
    } else {
      len = (tag >>> 2) + 1;
      offset = u32le(c.slice(4), 0);
    }
    if (offset === 0 || offset > o) throw new FormatError('snappy copy offset out of range');
    if (len > n - o) throw new FormatError('snappy copy overruns the output');
    for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!;
  }
  if (o !== n) throw new FormatError(`snappy block decoded to ${o} bytes, header says ${n}`);
  return out;
}

// ---- log files ----

const LOG_BLOCK = 32768;
const LOG_HEADER = 7;
enum RecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}

export interface LogScan {
  /** Complete logical records, reassembled from fragments. */
  records: Uint8Array[];
  /** Byte offset of the first damaged record, if any. */
  damageAt: number | null;
  damage: string | null;
  /** The file ends inside a record: a write torn by a crash, never acknowledged when writes are synced. */
  tornTailAt: number | null;
}

/** Walks a LevelDB log file, checking every record's CRC. Stops at the first damage. */
export function scanLog(buf: Uint8Array): LogScan {
  const records: Uint8Array[] = [];
  let pending: Uint8Array[] | null = null;
  let pos = 0;
  const fail = (at: number, why: string): LogScan => ({
    records,
    damageAt: at,
    damage: why,
    tornTailAt: null,
  });
  while (pos < buf.length) {
    const leftInBlock = LOG_BLOCK - (pos % LOG_BLOCK);
    if (leftInBlock < LOG_HEADER) {
      // Block trailer: LevelDB pads it with zeros.
      pos += leftInBlock;
      continue;
    }
    if (buf.length - pos < LOG_HEADER) {
      return { records, damageAt: null, damage: null, tornTailAt: pos };
    }
    const crc = u32le(buf, pos);
    const len = buf[pos + 4]! | (buf[pos + 5]! << 8);
    const type = buf[pos + 6]!;
    if (type === RecordType.Zero && len === 0 && crc === 0) {
      // Preallocated, never written space: the rest of the block is unused.
      pos += leftInBlock;
      continue;
    }
    if (LOG_HEADER + len > leftInBlock) return fail(pos, `record length ${len} runs past its 32 KiB block`);
    if (pos + LOG_HEADER + len > buf.length) {
      return { records, damageAt: null, damage: null, tornTailAt: pos };
    }
    const expected = maskCrc(crc32c(buf, pos + 6, pos + LOG_HEADER + len));
    if (expected !== crc) return fail(pos, 'record checksum mismatch');
    const payload = buf.subarray(pos + LOG_HEADER, pos + LOG_HEADER + len);
    switch (type) {
      case RecordType.Full:
        if (pending) return fail(pos, 'full record inside a fragmented one');
        records.push(payload);
        break;
      case RecordType.First:
        if (pending) return fail(pos, 'first fragment inside a fragmented record');
        pending = [payload];
        break;
      case RecordType.Middle:
        if (!pending) return fail(pos, 'middle fragment without a first');
        pending.push(payload);
        break;
      case RecordType.Last: {
        if (!pending) return fail(pos, 'last fragment without a first');
        pending.push(payload);
        records.push(Buffer.concat(pending));
        pending = null;
        break;
      }
      default:
        return fail(pos, `unknown record type ${type}`);
    }
    pos += LOG_HEADER + len;
  }
  return { records, damageAt: null, damage: null, tornTailAt: pending ? buf.length : null };
}

// ---- MANIFEST: which tables are live, and how big they must be ----

export interface ManifestState {
  logNumber: number;
  prevLogNumber: number;
  /** Live table file number -> size in bytes. */
  tables: Map<number, number>;
}

/** Applies the VersionEdits of a MANIFEST in order. Throws FormatError on a malformed edit. */
export function replayManifest(records: Uint8Array[]): ManifestState {
  const state: ManifestState = { logNumber: 0, prevLogNumber: 0, tables: new Map() };
  for (const rec of records) {
    const c = new Cursor(rec);
    while (!c.done) {
      const tag = c.varint();
      switch (tag) {
        case 1: // comparator name
          c.lengthPrefixed();
          break;
        case 2:
          state.logNumber = c.varint();
          break;
        case 3: // next file number
        case 4: // last sequence
          c.varint();
          break;
        case 5: // compact pointer: level, internal key
          c.varint();
          c.lengthPrefixed();
          break;
        case 6: {
          c.varint(); // level
          state.tables.delete(c.varint());
          break;
        }
        case 7: {
          c.varint(); // level
          const number = c.varint();
          const size = c.varint();
          c.lengthPrefixed(); // smallest key
          c.lengthPrefixed(); // largest key
          state.tables.set(number, size);
          break;
        }
        case 9:
          state.prevLogNumber = c.varint();
          break;
        default:
          throw new FormatError(`unknown version edit tag ${tag}`);
      }
    }
  }
  return state;
}

// ---- tables ----

const FOOTER_BYTES = 48;
const TABLE_MAGIC_LO = 0x8b80fb57;
const TABLE_MAGIC_HI = 0xdb477524;
const BLOCK_TRAILER = 5;
/** Bound on a decompressed index or metaindex block (LevelDB's are a few KiB). */
const INDEX_BLOCK_BYTES_MAX = 64 * 1024 * 1024;

interface BlockHandle {
  offset: number;
  size: number;
}

function readHandle(c: Cursor): BlockHandle {
  return { offset: c.varint(), size: c.varint() };
}

/** Checks one block's trailer CRC; returns its (decompressed) contents. */
function readBlock(file: Uint8Array, h: BlockHandle, what: string): Uint8Array {
  if (h.offset + h.size + BLOCK_TRAILER > file.length) {
    throw new FormatError(`${what} at offset ${h.offset} (${h.size} bytes) runs past the end of the file`);
  }
  const typeAt = h.offset + h.size;
  const stored = u32le(file, typeAt + 1);
  if (maskCrc(crc32c(file, h.offset, typeAt + 1)) !== stored) {
    throw new FormatError(`${what} at offset ${h.offset}: checksum mismatch`);
  }
  const raw = file.subarray(h.offset, typeAt);
  const type = file[typeAt]!;
  if (type === 0) return raw;
  if (type === 1) return snappyDecompress(raw, INDEX_BLOCK_BYTES_MAX);
  throw new FormatError(`${what} at offset ${h.offset}: unknown compression type ${type}`);
}

/** The values of a block's entries (keys are prefix-compressed; we only need values). */
function blockValues(block: Uint8Array): Uint8Array[] {
  if (block.length < 4) throw new FormatError('block shorter than its restart count');
  const restarts = u32le(block, block.length - 4);
  const entriesEnd = block.length - 4 - 4 * restarts;
  if (restarts === 0 || entriesEnd < 0) throw new FormatError('bad restart array');
  const c = new Cursor(block, 0, entriesEnd);
  const values: Uint8Array[] = [];
  while (!c.done) {
    c.varint(); // shared key bytes
    const unshared = c.varint();
    const valueLen = c.varint();
    c.slice(unshared);
    values.push(c.slice(valueLen));
  }
  return values;
}

export interface TableCheck {
  blocks: number;
}

/**
 * Verifies a table: footer magic, then the CRC of the index and metaindex blocks and of
 * every block they point to (data and filter blocks). Throws FormatError naming the damage.
 */
export function verifyTable(file: Uint8Array): TableCheck {
  if (file.length < FOOTER_BYTES)
    throw new FormatError(`file is ${file.length} bytes, shorter than a footer`);
  const footerAt = file.length - FOOTER_BYTES;
  if (u32le(file, file.length - 8) !== TABLE_MAGIC_LO || u32le(file, file.length - 4) !== TABLE_MAGIC_HI) {
    throw new FormatError('footer magic number missing (truncated or overwritten)');
  }
  const c = new Cursor(file, footerAt, file.length - 8);
  const metaindex = readHandle(c);
  const index = readHandle(c);
  let blocks = 2;
  for (const v of blockValues(readBlock(file, metaindex, 'metaindex block'))) {
    readBlock(file, readHandle(new Cursor(v)), 'meta block');
    blocks++;
  }
  for (const v of blockValues(readBlock(file, index, 'index block'))) {
    readBlock(file, readHandle(new Cursor(v)), 'data block');
    blocks++;
  }
  return { blocks };
}
