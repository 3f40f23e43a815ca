import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { OpsError } from '../../node/ops/errors.js';
import { planUnsafeReset, unsafeReset } from '../../node/ops/reset.js';

function isOps(code: string) {
  return (e: unknown) => e instanceof OpsError && e.code === code;
}

describe('unsafe-reset', () => {
  let root: string;
  let home: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hyb-reset-'));
    home = join(root, 'v0');
    await mkdir(join(home, 'keys'), { recursive: true });
    await writeFile(join(home, 'config.json'), '{"x":1}');
    await writeFile(join(home, 'genesis.json'), '{"g":1}');
    await writeFile(join(home, 'keys', 'validator.key'), 'secret', { mode: 0o600 });
    const db = new ClassicLevel(join(home, 'data'));
    await db.open();
    await db.put('a', 'b');
    await db.close();
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('describes what it deletes and keeps, warning about the TrInX counters', async () => {
    const plan = await planUnsafeReset(home);
    assert.deepEqual(plan.deletes, [join(home, 'data')]);
    assert.deepEqual(plan.keeps, [join(home, 'config.json'), join(home, 'genesis.json'), join(home, 'keys')]);
    assert.ok(plan.dataBytes > 0);
    assert.match(plan.message, /DELETES/);
    assert.match(plan.message, /TrInX/);
  });

  it('changes nothing without --yes', async () => {
    await assert.rejects(unsafeReset(home), isOps('confirmation-required'));
    assert.ok((await readdir(home)).includes('data'));
  });

  it('wipes the data directory and keeps keys, config and genesis', async () => {
    const r = await unsafeReset(home, { yes: true });
    assert.deepEqual(r.deleted, [join(home, 'data')]);
    assert.deepEqual((await readdir(home)).sort(), ['config.json', 'genesis.json', 'keys']);
    assert.equal(await readFile(join(home, 'keys', 'validator.key'), 'utf8'), 'secret');
  });

  it('refuses while a validator holds the database', async () => {
    const db = new ClassicLevel(join(home, 'data'));
    await db.open();
    try {
      await assert.rejects(unsafeReset(home, { yes: true }), isOps('data-dir-locked'));
    } finally {
      await db.close();
    }
    assert.ok((await readdir(home)).includes('data'));
  });

  it('refuses a directory that is not a validator home', async () => {
    const other = join(root, 'not-a-home');
    await mkdir(join(other, 'data'), { recursive: true });
    await assert.rejects(unsafeReset(other, { yes: true }), isOps('bad-home'));
    assert.ok((await readdir(other)).includes('data'));
  });
});
