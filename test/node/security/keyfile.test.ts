import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KEY_FILE_BYTES_MAX,
  KeyFileError,
  readKeyFile,
  writeKeyFile,
} from '../../../node/security/keyfile.js';

describe('key files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hyb-keyfile-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const rejects = async (p: Promise<unknown>, code: string, message?: RegExp) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof KeyFileError, String(e));
      assert.equal(e.code, code);
      if (message) assert.match(e.message, message);
      return true;
    });
  };

  it('are written with mode 0600 inside a 0700 directory, even under a permissive umask', async () => {
    const path = join(dir, 'keys', 'validator.key');
    const old = process.umask(0o000);
    try {
      await writeKeyFile(path, new Uint8Array([1, 2, 3]));
    } finally {
      process.umask(old);
    }
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700);
    assert.deepEqual(await readKeyFile(path), new Uint8Array([1, 2, 3]));
  });

  it('are never overwritten unless asked, and no temporary file is left behind', async () => {
    const path = join(dir, 'k');
    await writeKeyFile(path, 'first');
    await rejects(writeKeyFile(path, 'second'), 'exists');
    assert.equal(await readFile(path, 'utf8'), 'first');
    await writeKeyFile(path, 'third', { overwrite: true });
    assert.equal(await readFile(path, 'utf8'), 'third');
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(dir), ['k']);
  });

  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
    it(`are refused when their mode is 0${mode.toString(8)}, with the fix in the message`, async () => {
      const path = join(dir, 'k');
      await writeFile(path, 'secret-bytes');
      await chmod(path, mode);
      await rejects(readKeyFile(path), 'insecure-permissions', /chmod 600/);
      // The message must never carry the key itself.
      await readKeyFile(path).catch((e: Error) => assert.doesNotMatch(e.message, /secret-bytes/));
    });
  }

  it('are accepted with mode 0400 (read-only for the owner)', async () => {
    const path = join(dir, 'k');
    await writeFile(path, 'x');
    await chmod(path, 0o400);
    assert.deepEqual(await readKeyFile(path), new TextEncoder().encode('x'));
  });

  it('are checked through a symlink on the file it points to', async () => {
    const target = join(dir, 'real');
    await writeFile(target, 'x');
    await chmod(target, 0o644);
    await symlink(target, join(dir, 'link'));
    await rejects(readKeyFile(join(dir, 'link')), 'insecure-permissions');
  });

  it('report a missing file, a directory and an oversized file as typed errors', async () => {
    await rejects(readKeyFile(join(dir, 'nope')), 'not-found');
    await rejects(readKeyFile(dir), 'not-a-file');
    const big = join(dir, 'big');
    await writeFile(big, new Uint8Array(KEY_FILE_BYTES_MAX + 1));
    await chmod(big, 0o600);
    await rejects(readKeyFile(big), 'too-large');
  });
});
