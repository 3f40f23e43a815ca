import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { backupDatabase, backupHome } from '../../node/ops/backup.js';
import { OpsError } from '../../node/ops/errors.js';
import { restoreHome } from '../../node/ops/restore.js';

const WRITER = fileURLToPath(new URL('./level-writer.fixture.js', import.meta.url));

function isOps(code: string) {
  return (e: unknown) => e instanceof OpsError && e.code === code;
}

async function makeHome(root: string, name: string): Promise<string> {
  const home = join(root, name);
  await mkdir(join(home, 'keys'), { recursive: true });
  await writeFile(join(home, 'config.json'), '{}');
  await writeFile(join(home, 'keys', 'validator.key'), 'secret', { mode: 0o600 });
  return home;
}

async function fill(dir: string, n: number, tag: string): Promise<void> {
  const db = new ClassicLevel<string, string>(dir);
  await db.open();
  const batch = db.batch();
  for (let i = 0; i < n; i++) batch.put(`key/${String(i).padStart(6, '0')}`, `${tag}-${i}`);
  await batch.write();
  await db.close();
}

async function readAll(dir: string): Promise<Array<[string, string]>> {
  const db = new ClassicLevel<string, string>(dir);
  await db.open({ createIfMissing: false });
  const all = await db.iterator().all();
  await db.close();
  return all;
}

describe('backup and restore of a validator data directory', () => {
  let root: string;
  let child: ChildProcess | null = null;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hyb-ops-'));
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    child = null;
    await rm(root, { recursive: true, force: true });
  });

  it('round-trips every key and value of a stopped validator into another home', async () => {
    const a = await makeHome(root, 'a');
    const b = await makeHome(root, 'b');
    await fill(join(a, 'data'), 3000, 'a');
    const file = join(root, 'a.hybsnap');
    const backup = await backupHome(a, file, { meta: { latestHeight: '3000' } });
    assert.equal(backup.mode, 'offline');
    assert.equal(backup.entryCount, 3000);
    const restored = await restoreHome(b, file);
    assert.equal(restored.entriesWritten, 3000);
    assert.equal(restored.existing, null);
    assert.deepEqual(await readAll(join(b, 'data')), await readAll(join(a, 'data')));
  });

  it('takes a consistent online snapshot while another process keeps writing batches', async () => {
    const home = await makeHome(root, 'live');
    child = spawn(process.execPath, [WRITER, join(home, 'data')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.match(chunk.toString(), /ready/);
    const file = join(root, 'live.hybsnap');
    const backup = await backupHome(home, file);
    assert.equal(backup.mode, 'online', 'the writer holds the lock, so the backup must be online');
    child.kill('SIGKILL');
    await once(child, 'exit');

    const target = await makeHome(root, 'target');
    await restoreHome(target, file);
    const db = new ClassicLevel<string, Uint8Array>(join(target, 'data'), { valueEncoding: 'view' });
    await db.open({ createIfMissing: false });
    const headBytes = await db.get('head');
    assert.ok(headBytes, 'head key present');
    const head = Number(new DataView(headBytes.buffer, headBytes.byteOffset, 8).getBigUint64(0));
    const items = await db.keys({ gte: 'item/', lt: 'item0' }).all();
    await db.close();
    // Every batch is all-or-nothing in the snapshot: items 0..head, no more, no fewer.
    assert.ok(head >= 50, `head ${head} at least the ready mark`);
    assert.equal(items.length, head + 1);
    assert.equal(items.at(-1), `item/${String(head).padStart(10, '0')}`);
    // The live copy is cleaned up.
    assert.deepEqual(
      (await readdir(home)).filter((n) => n.startsWith('.backup-copy-')),
      [],
    );
  });

  it('copies table files instead of hard-linking them when the data directory is on another file system', async function () {
    // /dev/shm is a tmpfs: a data directory there, linked from a home on the root file
    // system, makes every hard link of the live copy fail with EXDEV.
    const home = await makeHome(root, 'split');
    const elsewhere = await mkdtemp('/dev/shm/hyb-ops-data-');
    try {
      await symlink(elsewhere, join(home, 'data'));
      const [homeDev, dataDev] = await Promise.all([stat(home), stat(elsewhere)]);
      if (homeDev.dev === dataDev.dev) {
        assert.ok(!process.env.CI, '/dev/shm must be another file system than the temp dir in CI');
        this.skip();
      }
      child = spawn(process.execPath, [WRITER, join(home, 'data')], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
      assert.match(chunk.toString(), /ready/);
      // Let the writer pass the 4 MiB memtable so there are table files to copy.
      const deadline = Date.now() + 20_000;
      while (!(await readdir(elsewhere)).some((n) => /\.(ldb|sst)$/.test(n))) {
        assert.ok(Date.now() < deadline, 'the writer produced no table file');
        await new Promise((r) => setTimeout(r, 50));
      }
      const file = join(root, 'split.hybsnap');
      const backup = await backupHome(home, file);
      assert.equal(backup.mode, 'online');
      child.kill('SIGKILL');
      await once(child, 'exit');
      const target = await makeHome(root, 'split-target');
      await restoreHome(target, file);
      const db = new ClassicLevel<string, Uint8Array>(join(target, 'data'), { valueEncoding: 'view' });
      await db.open({ createIfMissing: false });
      const headBytes = await db.get('head');
      const items = await db.keys({ gte: 'item/', lt: 'item0' }).all();
      await db.close();
      assert.ok(headBytes, 'head key present');
      const head = Number(new DataView(headBytes.buffer, headBytes.byteOffset, 8).getBigUint64(0));
      assert.ok(head > 500, `head ${head}: the snapshot holds the flushed tables' items`);
      assert.equal(items.length, head + 1);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('snapshots an open database handle in the same process without blocking its writes', async () => {
    const dir = join(root, 'db');
    const db = new ClassicLevel<string, string>(dir);
    await db.open();
    await db.batch(
      Array.from({ length: 500 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'v' })),
    );
    const file = join(root, 'h.hybsnap');
    const pending = backupDatabase(db, file);
    // Written after the iterator's implicit snapshot: must not be in the file.
    await db.put('zz-after', 'x');
    const summary = await pending;
    assert.equal(summary.entryCount, 500);
    await db.close();
  });

  it('asks for confirmation before replacing existing data and then keeps the old data aside', async () => {
    const a = await makeHome(root, 'a');
    const b = await makeHome(root, 'b');
    await fill(join(a, 'data'), 100, 'a');
    await fill(join(b, 'data'), 10, 'b');
    const file = join(root, 'a.hybsnap');
    await backupHome(a, file);
    await assert.rejects(restoreHome(b, file), isOps('confirmation-required'));
    assert.equal((await readAll(join(b, 'data'))).length, 10, 'unchanged without --yes');
    const r = await restoreHome(b, file, { yes: true });
    assert.ok(r.existing);
    assert.equal((await readAll(join(b, 'data'))).length, 100);
    assert.equal((await readAll(r.existing.movedTo)).length, 10, 'old data moved aside, not deleted');
  });

  it('refuses a corrupt snapshot and leaves the data directory untouched', async () => {
    const a = await makeHome(root, 'a');
    const b = await makeHome(root, 'b');
    await fill(join(a, 'data'), 100, 'a');
    await fill(join(b, 'data'), 10, 'b');
    const file = join(root, 'a.hybsnap');
    await backupHome(a, file);
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    await writeFile(file, bytes);
    await assert.rejects(restoreHome(b, file, { yes: true }), isOps('bad-snapshot'));
    const after = await readAll(join(b, 'data'));
    assert.equal(after.length, 10);
    assert.equal(after[0]?.[1], 'b-0');
    assert.deepEqual(
      (await readdir(b)).filter((n) => n.startsWith('data.')),
      [],
      'no staging or moved-aside directory left',
    );
  });

  it('refuses a snapshot of another chain', async () => {
    const a = await makeHome(root, 'a');
    await fill(join(a, 'data'), 5, 'a');
    const file = join(root, 'a.hybsnap');
    await backupHome(a, file, { meta: { genesisHash: '11'.repeat(32) } });
    const b = await makeHome(root, 'b');
    await assert.rejects(restoreHome(b, file, { genesisHash: '22'.repeat(32) }), isOps('genesis-mismatch'));
  });

  it('refuses to restore into a home whose genesis.json differs from the snapshot’s', async () => {
    const a = await makeHome(root, 'a');
    const b = await makeHome(root, 'b');
    await writeFile(join(a, 'genesis.json'), '{"chainId":"one"}');
    await writeFile(join(b, 'genesis.json'), '{"chainId":"two"}');
    await fill(join(a, 'data'), 5, 'a');
    const file = join(root, 'a.hybsnap');
    const s = await backupHome(a, file);
    assert.match(s.meta.genesisFileSha256 ?? '', /^[0-9a-f]{64}$/);
    await assert.rejects(restoreHome(b, file), isOps('genesis-mismatch'));
    await writeFile(join(b, 'genesis.json'), '{"chainId":"one"}');
    assert.equal((await restoreHome(b, file)).entriesWritten, 5);
  });

  it('refuses to restore into a data directory a running validator holds', async () => {
    const home = await makeHome(root, 'a');
    await fill(join(home, 'data'), 5, 'a');
    const file = join(root, 'a.hybsnap');
    await backupHome(home, file);
    const db = new ClassicLevel(join(home, 'data'));
    await db.open();
    try {
      await assert.rejects(restoreHome(home, file, { yes: true }), isOps('data-dir-locked'));
    } finally {
      await db.close();
    }
  });

  it('does not overwrite an existing backup file', async () => {
    const a = await makeHome(root, 'a');
    await fill(join(a, 'data'), 5, 'a');
    const file = join(root, 'a.hybsnap');
    await writeFile(file, 'precious');
    await assert.rejects(backupHome(a, file), isOps('target-exists'));
    assert.equal(await readFile(file, 'utf8'), 'precious');
  });

  it('reports a home without a database as such', async () => {
    const a = await makeHome(root, 'empty');
    await assert.rejects(backupHome(a, join(root, 'x.hybsnap')), isOps('no-data-dir'));
  });
});
