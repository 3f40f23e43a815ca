import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpsError } from '../../node/ops/errors.js';
import { SnapshotWriter, verifySnapshot } from '../../node/ops/snapshot-file.js';

async function writeSample(path: string, n: number): Promise<void> {
  const w = await SnapshotWriter.create(path, { genesisHash: 'ab'.repeat(32), latestHeight: String(n) });
  for (let i = 0; i < n; i++) await w.add(Buffer.from(`k${i}`), Buffer.alloc(i * 10, i));
  await w.finish();
}

function isOps(code: string) {
  return (e: unknown) => e instanceof OpsError && e.code === code;
}

describe('snapshot file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hyb-snap-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back the entry count, payload size and meta it was written with', async () => {
    const path = join(dir, 's.hybsnap');
    await writeSample(path, 200);
    const s = await verifySnapshot(path);
    assert.equal(s.entryCount, 200);
    let payload = 0;
    for (let i = 0; i < 200; i++) payload += `k${i}`.length + i * 10;
    assert.equal(s.payloadBytes, payload);
    assert.equal(s.meta.latestHeight, '200');
    assert.equal(s.fileBytes, (await stat(path)).size);
  });

  it('refuses a file with one flipped byte anywhere in the body', async () => {
    const path = join(dir, 's.hybsnap');
    await writeSample(path, 50);
    const bytes = await readFile(path);
    for (const at of [40, Math.floor(bytes.length / 2), bytes.length - 40]) {
      const copy = Buffer.from(bytes);
      copy[at] = (copy[at] ?? 0) ^ 0x01;
      await writeFile(path, copy);
      await assert.rejects(verifySnapshot(path), isOps('bad-snapshot'), `flip at ${at}`);
    }
  });

  it('refuses a truncated file, an empty file and a file that is not a snapshot', async () => {
    const path = join(dir, 's.hybsnap');
    await writeSample(path, 50);
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 1));
    await assert.rejects(verifySnapshot(path), isOps('bad-snapshot'));
    await writeFile(path, Buffer.alloc(0));
    await assert.rejects(verifySnapshot(path), isOps('bad-snapshot'));
    await writeFile(path, Buffer.from('{"not":"a snapshot"}'));
    await assert.rejects(verifySnapshot(path), isOps('bad-snapshot'));
  });

  it('refuses a length field above the configured bound without allocating it', async () => {
    const path = join(dir, 's.hybsnap');
    await writeSample(path, 3);
    await assert.rejects(verifySnapshot(path, { keyBytesMax: 64, valueBytesMax: 5 }), isOps('bad-snapshot'));
  });

  it('does not overwrite a partial file left by an interrupted backup', async () => {
    const path = join(dir, 's.hybsnap');
    await writeFile(`${path}.partial`, 'x');
    await assert.rejects(SnapshotWriter.create(path, {}), isOps('target-exists'));
  });
});
