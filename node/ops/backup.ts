// Backup of a validator's ledger database into one verifiable file.
//
// Intended CLI (wired by node/cli.ts):
//   hybster backup --home <dir> --out <file.hybsnap>
//     "Snapshot of <home>/data written to <file>: <n> entries, <bytes> bytes, sha256 <hex> (online|offline)"
// Works while the validator runs: see `backupHome` for how a consistent point in time is obtained.
// It never changes the validator's data directory, so it needs no --yes.

import { copyFile, link, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { OpsError } from './errors.js';
import { dataDirOf, exists, genesisFileSha256, openRawLevel } from './level-dir.js';
import {
  DEFAULT_SNAPSHOT_LIMITS,
  type SnapshotLimits,
  type SnapshotMeta,
  type SnapshotSummary,
  SnapshotWriter,
} from './snapshot-file.js';

/**
 * A database the snapshot can read from: classic-level, whose iterators read from an
 * implicit snapshot taken when the iterator is created, so concurrent writes are not seen.
 */
export interface SnapshotSource {
  iterator(options: { keyEncoding: 'view'; valueEncoding: 'view' }): {
    nextv(size: number): Promise<Array<[Uint8Array, Uint8Array]>>;
    close(): Promise<void>;
  };
}

export interface BackupOptions {
  meta?: SnapshotMeta;
  limits?: SnapshotLimits;
  /** Entries fetched per iterator step; bounds memory while copying. */
  entriesPerStep?: number;
}

/**
 * Online snapshot of an open database (e.g. the running validator's own handle): one
 * iterator, hence one LevelDB snapshot taken synchronously when this is called, streamed
 * into `file`. Writes that start after the call are not in the file.
 */
export async function backupDatabase(
  db: SnapshotSource,
  file: string,
  options: BackupOptions = {},
): Promise<SnapshotSummary> {
  // The iterator is created before the first await: the snapshot is the database as of this call.
  const it = db.iterator({ keyEncoding: 'view', valueEncoding: 'view' });
  let writer: SnapshotWriter;
  try {
    if (await exists(file)) throw new OpsError('target-exists', `${file} exists; choose another file name`);
    writer = await SnapshotWriter.create(file, options.meta ?? {}, options.limits ?? DEFAULT_SNAPSHOT_LIMITS);
  } catch (e) {
    await it.close().catch(() => {});
    throw e;
  }
  try {
    const step = options.entriesPerStep ?? 1000;
    for (;;) {
      const entries = await it.nextv(step);
      if (entries.length === 0) break;
      for (const [k, v] of entries) await writer.add(k, v);
    }
    await it.close();
    return await writer.finish();
  } catch (e) {
    await it.close().catch(() => {});
    await writer.abort();
    throw e;
  }
}

export interface HomeBackupResult extends SnapshotSummary {
  /**
   * 'offline': the database was not in use and was read directly.
   * 'online': a validator held it; a crash-consistent copy of its files was read instead.
   */
  mode: 'offline' | 'online';
  /** How many times the live copy was retried because LevelDB changed its files meanwhile. */
  copyRetries: number;
}

/** Attempts at a live copy before giving up; each only fails if a compaction raced it. */
const LIVE_COPY_ATTEMPTS = 8;

/**
 * Snapshot of `<home>/data` into `file`, whether or not the validator is running.
 *
 * Offline, the database is opened and iterated directly. Online, LevelDB's lock keeps
 * other processes out, so we take a crash-consistent copy instead: table files (.ldb,
 * .sst) are immutable and are hard-linked; CURRENT, MANIFEST and the write-ahead logs are
 * copied. If the directory listing changed while copying (a flush or compaction ran),
 * the copy is thrown away and retried. Opening the copy replays the logs exactly as after a
 * `kill -9`, and the ledger writes each block as one atomic batch, so the copy sits at a
 * block boundary. The copy lives next to the data dir (hard links need the same file
 * system) and is removed afterwards.
 */
export async function backupHome(
  home: string,
  file: string,
  options: BackupOptions = {},
): Promise<HomeBackupResult> {
  const dataDir = dataDirOf(home);
  // Record which genesis file this database belongs to, so restore can refuse another chain's home.
  const genesisSha = await genesisFileSha256(home);
  options = {
    ...options,
    meta: { ...(genesisSha ? { genesisFileSha256: genesisSha } : {}), ...options.meta },
  };
  try {
    const db = await openRawLevel(dataDir, true);
    try {
      const summary = await backupDatabase(db, file, options);
      return { ...summary, mode: 'offline', copyRetries: 0 };
    } finally {
      await db.close();
    }
  } catch (e) {
    if (!(e instanceof OpsError && e.code === 'data-dir-locked')) throw e;
  }
  const copyDir = join(home, `.backup-copy-${process.pid}-${Date.now()}`);
  try {
    const copyRetries = await liveCopy(dataDir, copyDir);
    const db = await openRawLevel(copyDir, true);
    try {
      const summary = await backupDatabase(db, file, options);
      return { ...summary, mode: 'online', copyRetries };
    } finally {
      await db.close();
    }
  } finally {
    await rm(copyDir, { recursive: true, force: true });
  }
}

async function liveCopy(src: string, dst: string): Promise<number> {
  for (let attempt = 0; attempt < LIVE_COPY_ATTEMPTS; attempt++) {
    await rm(dst, { recursive: true, force: true });
    await mkdir(dst, { recursive: true });
    const before = await listing(src);
    try {
      // CURRENT and MANIFEST first, then logs, then tables: a table a newer MANIFEST
      // names cannot be missed because any new table also changes the listing.
      const ordered = [...before].sort((a, b) => rank(a) - rank(b));
      for (const name of ordered) {
        if (name === 'LOCK' || name === 'LOG' || name === 'LOG.old') continue;
        if (/\.(ldb|sst)$/.test(name)) await linkOrCopy(join(src, name), join(dst, name));
        else await copyFile(join(src, name), join(dst, name));
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // deleted by a compaction mid-copy
      throw new OpsError('io', `live copy of ${src} failed: ${(e as Error).message}`, { cause: e });
    }
    const after = await listing(src);
    const currentNow = await readFile(join(src, 'CURRENT'), 'utf8').catch(() => '');
    const currentCopied = await readFile(join(dst, 'CURRENT'), 'utf8').catch(() => '');
    if (sameSet(before, after) && currentNow === currentCopied) return attempt;
  }
  throw new OpsError(
    'io',
    `${src} kept changing during ${LIVE_COPY_ATTEMPTS} copy attempts; retry when the validator is less busy`,
  );
}

/** Hard link (instant, and immune to the table being deleted meanwhile); a copy when data/ is another file system. */
async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(src, dst);
  }
}

function rank(name: string): number {
  if (name === 'CURRENT') return 0;
  if (name.startsWith('MANIFEST-')) return 1;
  if (name.endsWith('.log')) return 2;
  return 3;
}

async function listing(dir: string): Promise<Set<string>> {
  return new Set(await readdir(dir));
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
