// Small helpers around a validator's LevelDB directory (`<home>/data`) shared by backup,
// restore and reset: where it is, whether a running validator holds it, how big it is.

import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { isLevelLocked, OpsError } from './errors.js';

export type RawLevel = ClassicLevel<Uint8Array, Uint8Array>;

export function dataDirOf(home: string): string {
  return join(home, 'data');
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens an existing LevelDB directory with raw byte keys and values. Throws
 * OpsError('data-dir-locked') when another process (a running validator) holds it and
 * OpsError('no-data-dir') when there is no database there.
 */
export async function openRawLevel(dir: string, readOnlyIntent: boolean): Promise<RawLevel> {
  if (!(await exists(join(dir, 'CURRENT')))) {
    throw new OpsError('no-data-dir', `${dir} holds no LevelDB database`);
  }
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    // createIfMissing false: a typo in --home must not create an empty database.
    await db.open({ createIfMissing: false, errorIfExists: false });
  } catch (e) {
    if (isLevelLocked(e)) {
      throw new OpsError(
        'data-dir-locked',
        `${dir} is in use by a running validator${readOnlyIntent ? '' : '; stop it first'}`,
        { cause: e },
      );
    }
    throw new OpsError('io', `cannot open ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return db;
}

/** True when a process holds the database lock (tries to open, closes again). */
export async function isDataDirLocked(dir: string): Promise<boolean> {
  try {
    const db = await openRawLevel(dir, true);
    await db.close();
    return false;
  } catch (e) {
    if (e instanceof OpsError && e.code === 'data-dir-locked') return true;
    if (e instanceof OpsError && e.code === 'no-data-dir') return false;
    throw e;
  }
}

/** Total bytes and file count under `dir` (0, 0 when missing). */
export async function dirUsage(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch {
    return { bytes, files };
  }
  for (const name of entries) {
    const s = await stat(join(dir, name)).catch(() => null);
    if (s?.isFile()) {
      bytes += s.size;
      files++;
    }
  }
  return { bytes, files };
}

/** SHA-256 (hex) of `<home>/genesis.json`, or undefined when the home has none. */
export async function genesisFileSha256(home: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(join(home, 'genesis.json')))
      .digest('hex');
  } catch {
    return undefined;
  }
}
