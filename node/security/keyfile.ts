// Key files: written with mode 0600 and refused when group or others can read or write
// them, the way ssh treats private keys. The check runs on the opened descriptor (fstat),
// so the file that is checked is the file that is read.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export type KeyFileErrorCode =
  | 'not-found'
  | 'insecure-permissions'
  | 'not-a-file'
  | 'too-large'
  | 'exists'
  | 'io';

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  constructor(
    readonly code: KeyFileErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** A key file is a few hundred bytes; anything bigger is not one (and /dev/zero is not a key). */
export const KEY_FILE_BYTES_MAX = 64 * 1024;
export const KEY_FILE_MODE = 0o600;
export const KEY_DIR_MODE = 0o700;

const modeString = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * Reads a key file after checking it is a regular file that only its owner can access.
 * Never logs or returns the contents in an error message.
 */
export async function readKeyFile(path: string): Promise<Uint8Array> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyFileError('not-found', path, `key file ${path} does not exist`);
    throw new KeyFileError('io', path, `cannot open key file ${path}: ${code ?? String(e)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KeyFileError('not-a-file', path, `key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new KeyFileError(
        'insecure-permissions',
        path,
        `key file ${path} has mode ${modeString(st.mode)}: group or others can access it. ` +
          `Treat the key as possibly exposed; if it is not, run: chmod 600 ${path}`,
      );
    }
    if (st.size > KEY_FILE_BYTES_MAX) {
      throw new KeyFileError(
        'too-large',
        path,
        `key file ${path} is ${st.size} bytes, limit ${KEY_FILE_BYTES_MAX}`,
      );
    }
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    return new Uint8Array(buf.buffer, buf.byteOffset, bytesRead);
  } finally {
    await fh.close();
  }
}

export interface WriteKeyFileOptions {
  /** Replace an existing file; by default an existing key is never overwritten. */
  overwrite?: boolean;
}

/**
 * Writes a key file with mode 0600 (parent directory created 0700). The bytes go to a
 * temporary file created with 0600 from the start, are fsynced, and are renamed into
 * place, so no reader ever sees a partial key or a moment of wider permissions.
 */
export async function writeKeyFile(
  path: string,
  data: Uint8Array | string,
  opts: WriteKeyFileOptions = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: KEY_DIR_MODE });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fh: FileHandle | undefined;
  try {
    // O_EXCL: a pre-planted file or symlink at the temporary path is never written through.
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, KEY_FILE_MODE);
    // The umask cannot widen 0600, but a process umask could narrow it to something odd; pin it.
    await fh.chmod(KEY_FILE_MODE);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    if (opts.overwrite) {
      await rename(tmp, path);
    } else {
      // link() fails atomically with EEXIST, so two writers cannot both think they created the key.
      await link(tmp, path);
      await unlink(tmp);
    }
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !opts.overwrite) {
      throw new KeyFileError('exists', path, `key file ${path} already exists; refusing to overwrite a key`);
    }
    throw new KeyFileError(
      'io',
      path,
      `cannot write key file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
}
