// The single-file snapshot of a validator's LevelDB: every key/value pair of the
// database as one consistent point in time, with a header and a SHA-256 trailer so a
// truncated or altered file is refused before anything is written from it.
//
// Layout (integers big-endian, as everywhere in the project):
//   magic     8 bytes  "HYBSNAP1"
//   version   u16      1
//   createdMs u64      wall clock of the snapshot
//   meta      u32 length + UTF-8 JSON (SnapshotMeta), at most META_BYTES_MAX
//   entries   repeated: u8 tag=1, u32 keyLength, key, u32 valueLength, value
//   end       u8 tag=0, u64 entryCount, u64 payloadBytes (sum of key and value lengths)
//   checksum  32 bytes SHA-256 of every byte before it
// The file is written to `<path>.partial` and renamed when complete, so a crash
// mid-backup never leaves a file that looks finished.

import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { OpsError } from './errors.js';

const MAGIC = new TextEncoder().encode('HYBSNAP1');
const FORMAT_VERSION = 1;
const TAG_ENTRY = 1;
const TAG_END = 0;
const CHECKSUM_BYTES = 32;
const META_BYTES_MAX = 64 * 1024;
const CHUNK_BYTES = 1024 * 1024;

/** What the snapshot says about where it came from; all optional, checked on restore when present. */
export interface SnapshotMeta {
  /** Hex genesis hash of the chain the database belongs to. */
  genesisHash?: string;
  /** Latest block height when the snapshot was taken (decimal string). */
  latestHeight?: string;
  /** Free text for operators, e.g. the validator name. */
  label?: string;
  /** SHA-256 (hex) of the home's genesis.json bytes; restore refuses a home with another file. */
  genesisFileSha256?: string;
}

export interface SnapshotLimits {
  /** Largest key accepted (bytes); a larger one marks the file as corrupt. */
  keyBytesMax: number;
  /** Largest value accepted (bytes); bounds memory while reading an untrusted file. */
  valueBytesMax: number;
}

export const DEFAULT_SNAPSHOT_LIMITS: SnapshotLimits = {
  keyBytesMax: 64 * 1024,
  valueBytesMax: 64 * 1024 * 1024,
};

export interface SnapshotSummary {
  path: string;
  createdMs: number;
  meta: SnapshotMeta;
  entryCount: number;
  payloadBytes: number;
  fileBytes: number;
  sha256Hex: string;
}

/** Appends entries to a new snapshot file in large chunks; `finish` seals and renames it. */
export class SnapshotWriter {
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  private entryCount = 0;
  private payloadBytes = 0;
  private fileBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private done = false;

  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly partialPath: string,
    private readonly createdMs: number,
    private readonly meta: SnapshotMeta,
    private readonly limits: SnapshotLimits,
  ) {}

  static async create(
    path: string,
    meta: SnapshotMeta,
    limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS,
  ): Promise<SnapshotWriter> {
    const partialPath = `${path}.partial`;
    let handle: FileHandle;
    try {
      // 'wx': never clobber; a stale .partial from a crashed run is the operator's to remove.
      handle = await open(partialPath, 'wx', 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        throw new OpsError(
          'target-exists',
          `${partialPath} exists (an interrupted backup?); remove it first`,
        );
      }
      throw new OpsError('io', `cannot create ${partialPath}: ${(e as Error).message}`, { cause: e });
    }
    const w = new SnapshotWriter(handle, path, partialPath, Date.now(), meta, limits);
    await w.writeHeader();
    return w;
  }

  private async writeHeader(): Promise<void> {
    const metaBytes = Buffer.from(JSON.stringify(this.meta), 'utf8');
    if (metaBytes.length > META_BYTES_MAX) throw new OpsError('oversized-entry', 'snapshot meta too large');
    const head = Buffer.alloc(8 + 2 + 8 + 4);
    head.set(MAGIC, 0);
    head.writeUInt16BE(FORMAT_VERSION, 8);
    head.writeBigUInt64BE(BigInt(this.createdMs), 10);
    head.writeUInt32BE(metaBytes.length, 18);
    await this.put(head);
    await this.put(metaBytes);
  }

  async add(key: Uint8Array, value: Uint8Array): Promise<void> {
    if (key.length > this.limits.keyBytesMax || value.length > this.limits.valueBytesMax) {
      throw new OpsError(
        'oversized-entry',
        `entry of ${key.length}+${value.length} bytes exceeds the snapshot limits`,
      );
    }
    const head = Buffer.allocUnsafe(5);
    head.writeUInt8(TAG_ENTRY, 0);
    head.writeUInt32BE(key.length, 1);
    await this.put(head);
    await this.put(key);
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(value.length, 0);
    await this.put(len);
    await this.put(value);
    this.entryCount++;
    this.payloadBytes += key.length + value.length;
  }

  /** Writes the trailer, fsyncs, renames into place; returns what was written. */
  async finish(): Promise<SnapshotSummary> {
    const end = Buffer.alloc(17);
    end.writeUInt8(TAG_END, 0);
    end.writeBigUInt64BE(BigInt(this.entryCount), 1);
    end.writeBigUInt64BE(BigInt(this.payloadBytes), 9);
    await this.put(end);
    const digest = this.hash.digest();
    await this.flush();
    await this.handle.write(digest);
    this.fileBytes += digest.length;
    await this.handle.sync();
    await this.handle.close();
    this.done = true;
    await rename(this.partialPath, this.path);
    return {
      path: this.path,
      createdMs: this.createdMs,
      meta: this.meta,
      entryCount: this.entryCount,
      payloadBytes: this.payloadBytes,
      fileBytes: this.fileBytes,
      sha256Hex: digest.toString('hex'),
    };
  }

  /** Removes the partial file after a failure. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.handle.close().catch(() => {});
    await rm(this.partialPath, { force: true });
  }

  private async put(bytes: Uint8Array): Promise<void> {
    this.hash.update(bytes);
    this.fileBytes += bytes.length;
    if (bytes.length >= CHUNK_BYTES) {
      await this.flush();
      await this.handle.write(bytes);
      return;
    }
    if (this.used + bytes.length > CHUNK_BYTES) await this.flush();
    this.chunk.set(bytes, this.used);
    this.used += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.handle.write(this.chunk, 0, this.used);
    // The buffer handed to write() must not be reused before it resolves; it has, so reuse is safe.
    this.used = 0;
  }
}

/** Buffered sequential reader over a file that hashes what it consumes. */
class HashingFileReader {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private start = 0;
  private end = 0;
  private filePos = 0;
  readonly hash: Hash = createHash('sha256');
  consumed = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly fileBytes: number,
  ) {}

  get remaining(): number {
    return this.fileBytes - this.consumed;
  }

  async read(n: number, field: string, hashed = true): Promise<Buffer> {
    if (n > this.remaining) {
      throw new OpsError(
        'bad-snapshot',
        `snapshot truncated: ${field} needs ${n} bytes, ${this.remaining} left`,
      );
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      if (this.start === this.end) await this.fill();
      const take = Math.min(n - filled, this.end - this.start);
      this.buf.copy(out, filled, this.start, this.start + take);
      this.start += take;
      filled += take;
    }
    this.consumed += n;
    if (hashed) this.hash.update(out);
    return out;
  }

  private async fill(): Promise<void> {
    const { bytesRead } = await this.handle.read(this.buf, 0, this.buf.length, this.filePos);
    if (bytesRead === 0) throw new OpsError('bad-snapshot', 'snapshot shorter than its size on open');
    this.filePos += bytesRead;
    this.start = 0;
    this.end = bytesRead;
  }
}

export interface SnapshotHeader {
  createdMs: number;
  meta: SnapshotMeta;
}

/**
 * Reads a snapshot front to back, yielding entries, and throws OpsError('bad-snapshot') on any
 * structural problem or checksum mismatch. Entries are yielded before the checksum is known:
 * callers that write them somewhere must run `verifySnapshot` first (restore does).
 */
export async function* readSnapshot(
  path: string,
  onHeader: (h: SnapshotHeader) => void = () => {},
  limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS,
): AsyncGenerator<[Uint8Array, Uint8Array], SnapshotSummary> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new OpsError('bad-snapshot', `cannot open snapshot ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const { size } = await handle.stat();
    const r = new HashingFileReader(handle, size);
    const magic = await r.read(MAGIC.length, 'magic');
    if (!magic.equals(MAGIC)) throw new OpsError('bad-snapshot', `${path} is not a validator snapshot`);
    const version = (await r.read(2, 'version')).readUInt16BE(0);
    if (version !== FORMAT_VERSION) {
      throw new OpsError('bad-snapshot', `snapshot format version ${version} is not supported`);
    }
    const createdMs = Number((await r.read(8, 'createdMs')).readBigUInt64BE(0));
    const metaLength = (await r.read(4, 'meta length')).readUInt32BE(0);
    if (metaLength > META_BYTES_MAX) throw new OpsError('bad-snapshot', 'snapshot meta length out of bounds');
    const meta = parseMeta(await r.read(metaLength, 'meta'));
    onHeader({ createdMs, meta });
    let entryCount = 0;
    let payloadBytes = 0;
    for (;;) {
      const tag = (await r.read(1, 'tag'))[0];
      if (tag === TAG_END) break;
      if (tag !== TAG_ENTRY)
        throw new OpsError('bad-snapshot', `bad record tag ${tag} at byte ${r.consumed - 1}`);
      const keyLength = (await r.read(4, 'key length')).readUInt32BE(0);
      if (keyLength > limits.keyBytesMax)
        throw new OpsError('bad-snapshot', `key length ${keyLength} out of bounds`);
      const key = await r.read(keyLength, 'key');
      const valueLength = (await r.read(4, 'value length')).readUInt32BE(0);
      if (valueLength > limits.valueBytesMax) {
        throw new OpsError('bad-snapshot', `value length ${valueLength} out of bounds`);
      }
      const value = await r.read(valueLength, 'value');
      entryCount++;
      payloadBytes += keyLength + valueLength;
      yield [key, value];
    }
    const countInFile = Number((await r.read(8, 'entry count')).readBigUInt64BE(0));
    const bytesInFile = Number((await r.read(8, 'payload bytes')).readBigUInt64BE(0));
    const expected = r.hash.digest();
    const actual = await r.read(CHECKSUM_BYTES, 'checksum', false);
    if (!expected.equals(actual))
      throw new OpsError('bad-snapshot', 'snapshot checksum mismatch: file altered');
    if (countInFile !== entryCount || bytesInFile !== payloadBytes) {
      throw new OpsError('bad-snapshot', 'snapshot trailer does not match its entries');
    }
    if (r.remaining !== 0) throw new OpsError('bad-snapshot', `${r.remaining} trailing bytes after checksum`);
    return {
      path,
      createdMs,
      meta,
      entryCount,
      payloadBytes,
      fileBytes: size,
      sha256Hex: actual.toString('hex'),
    };
  } finally {
    await handle.close();
  }
}

/** Reads the whole file and checks structure and checksum without keeping entries. */
export async function verifySnapshot(
  path: string,
  limits: SnapshotLimits = DEFAULT_SNAPSHOT_LIMITS,
): Promise<SnapshotSummary> {
  const it = readSnapshot(path, () => {}, limits);
  for (;;) {
    const step = await it.next();
    if (step.done) return step.value;
  }
}

function parseMeta(bytes: Buffer): SnapshotMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new OpsError('bad-snapshot', 'snapshot meta is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OpsError('bad-snapshot', 'snapshot meta is not an object');
  }
  const o = raw as Record<string, unknown>;
  const meta: SnapshotMeta = {};
  for (const k of ['genesisHash', 'latestHeight', 'label', 'genesisFileSha256'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new OpsError('bad-snapshot', `snapshot meta.${k} is not a string`);
    meta[k] = v;
  }
  return meta;
}
