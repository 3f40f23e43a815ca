// A commit certificate is kept in memory when put and written to disk by the next block's
// batch; it is written on its own only when no block batch carries it within
// certWriteDelayMs, and by close(). Real LevelDB on disk; crashes are real SIGKILLs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBatch } from '../../ledger/batch.js';
import { blockHash, type CommitCertificate, signCommit } from '../../ledger/block.js';
import { toHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { sha256 } from '../../ledger/keys.js';
import { LedgerStore, type LedgerStoreOptions } from '../../ledger/store.js';
import { bytes, CHAIN, seedKey, tempDir } from './helpers.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'cert-write-child.js');
const genesisHash = sha256(bytes('certificate writes test genesis'));
const keys = [0, 1, 2].map(seedKey);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Block `height`'s certificate signed by `signers` (hash of the block as executed). */
const certOf = (height: bigint, hash: Uint8Array, signers = [0]): CommitCertificate => ({
  height,
  blockHash: hash,
  signatures: signers.map((i) => signCommit(height, hash, i, keys[i]!.secretKey)),
});

/**
 * Runs the child; resolves with its "put" line's count, its exit signal and how long it lived.
 * In mode "wait" it is SIGKILLed once it reports its delayed write written.
 */
function runChild(
  dir: string,
  delayMs: number,
  mode: 'wait' | 'exit',
): Promise<{ separateAtPut: number | null; signal: NodeJS.Signals | null; livedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(process.execPath, [child, dir, toHex(genesisHash), String(delayMs), mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    let separateAtPut: number | null = null;
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^put (\S+)$/m.exec(out);
      if (m !== null && separateAtPut === null) separateAtPut = Number(m[1]);
      if (mode === 'wait' && /^written$/m.test(out)) p.kill('SIGKILL');
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (signal === null && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve({ separateAtPut, signal, livedMs: performance.now() - started });
    });
  });
}

describe('ledger/store: commit certificate writes', function () {
  this.timeout(30_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir('cert-writes');
  });
  afterEach(() => t.cleanup());

  const open = (opts: Partial<LedgerStoreOptions> = {}) =>
    LedgerStore.open(t.dir, { genesisHash, sync: false, ...opts });
  const nextBlock = async (exec: Executor, store: LedgerStore) => {
    const order = store.latestHeight();
    const b = await exec.executeBatch({
      order,
      view: 0n,
      proposer: 0,
      batch: encodeBatch({ timestampMs: 1000n, txs: [] }),
    });
    return { height: b.header.height, hash: blockHash(b.header) };
  };

  it('writes nothing of its own when the next block follows within the delay', async () => {
    // A delay no loaded machine's block 2 can outlast; the timer is cancelled by its batch.
    const delayMs = 2_000;
    const store = await open({ certWriteDelayMs: delayMs });
    const exec = new Executor({ store, chainId: CHAIN });
    const b1 = await nextBlock(exec, store);
    const cert = certOf(b1.height, b1.hash, [0, 1]);
    await store.putCommitCertificate(cert);
    assert.deepEqual(store.commitCertificateSync(1n), cert, 'visible at once');
    assert.equal(store.certificateFinal(1n), false);
    await nextBlock(exec, store);
    await store.flush();
    assert.equal(store.certificateFinal(1n), true, "carried and settled by block 2's batch");
    await sleep(delayMs + 100);
    assert.equal(store.certificateWritesSeparate, 0, 'the carried certificate is never written again');
    await store.close();
    assert.equal(store.certificateWritesSeparate, 0, 'close() has nothing unsettled to write');
    const again = await open();
    assert.deepEqual(again.commitCertificateSync(1n), cert);
    assert.equal(again.certificateFinal(1n), true);
    await again.close();
  });

  it('writes a certificate no block follows on its own after the delay, where a kill -9 then keeps it', async () => {
    const delayMs = 100;
    const run = await runChild(t.dir, delayMs, 'wait');
    assert.equal(run.signal, 'SIGKILL');
    assert.equal(run.separateAtPut, 0, 'not written when put');
    const store = await open();
    const cert = store.commitCertificateSync(1n);
    assert.ok(cert !== null, 'the certificate is on disk');
    assert.equal(cert.height, 1n);
    assert.deepEqual(cert.blockHash, store.latestBlockHash());
    assert.equal(store.certificateFinal(1n), true, 'on disk at open');
    await store.close();
  });

  it('counts the delayed write once, and closes with it already on disk', async () => {
    const store = await open({ certWriteDelayMs: 50 });
    const exec = new Executor({ store, chainId: CHAIN });
    const b1 = await nextBlock(exec, store);
    const cert = certOf(b1.height, b1.hash);
    await store.putCommitCertificate(cert);
    assert.equal(store.certificateWritesSeparate, 0);
    await sleep(250);
    assert.equal(store.certificateWritesSeparate, 1, 'written once, after the delay');
    assert.equal(store.certificateFinal(1n), false, 'an unsynced write of its own is not final');
    await store.close();
    const again = await open();
    assert.deepEqual(again.commitCertificateSync(1n), cert);
    await again.close();
  });

  it('writes the certificates still waiting for their delay on close(), and a reopened store has them', async () => {
    // Close at once, before and around the moment the delayed write starts.
    for (const delayMs of [60_000, 0, 1, 5]) {
      const round = tempDir('cert-writes-close');
      try {
        const store = await LedgerStore.open(round.dir, {
          genesisHash,
          sync: false,
          certWriteDelayMs: delayMs,
        });
        const exec = new Executor({ store, chainId: CHAIN });
        const b1 = await nextBlock(exec, store);
        const cert = certOf(b1.height, b1.hash, [1, 2]);
        const put = store.putCommitCertificate(cert);
        if (delayMs === 5) await sleep(5);
        await Promise.all([put, store.close()]);
        if (delayMs === 60_000) assert.equal(store.certificateWritesSeparate, 1, 'written by close()');
        await assert.rejects(store.putCommitCertificate(cert), /closed/);
        const again = await LedgerStore.open(round.dir, { genesisHash, sync: false });
        assert.deepEqual(again.commitCertificateSync(1n), cert, `delay ${delayMs}: on disk after close()`);
        assert.equal(again.certificateFinal(1n), true);
        await again.close();
      } finally {
        round.cleanup();
      }
    }
  });

  it('does not keep a process alive for a delayed write', async () => {
    const delayMs = 20_000;
    const run = await runChild(t.dir, delayMs, 'exit');
    assert.equal(run.signal, null);
    assert.equal(run.separateAtPut, 0);
    assert.ok(run.livedMs < delayMs / 2, `the child ended on its own after ${Math.round(run.livedMs)} ms`);
  });

  it('answers a certificate pushed out of memory before it reaches the disk', async () => {
    const store = await open({ certCacheMax: 2, certWriteDelayMs: 60_000 });
    const certs = [1n, 2n, 3n, 4n].map((h) => certOf(h, sha256(bytes(`block ${h}`))));
    const puts = certs.map((c) => store.putCommitCertificate(c));
    // Beyond certCacheMax waiting certificates they are written at once; until that write
    // lands the evicted ones are answered from the unsettled set, not missed on disk.
    for (const c of certs) assert.deepEqual(store.commitCertificateSync(c.height), c);
    await Promise.all(puts);
    assert.equal(store.certificateWritesSeparate, 1, 'one write for the certificates over the bound');
    for (const c of certs) assert.deepEqual(store.commitCertificateSync(c.height), c);
    await store.close();
    const again = await open({ certCacheMax: 2 });
    for (const c of certs) assert.deepEqual(again.commitCertificateSync(c.height), c);
    await again.close();
  });

  it('remembers which certificate objects were put as verified, and none read back from disk', async () => {
    const store = await open();
    const exec = new Executor({ store, chainId: CHAIN });
    const b1 = await nextBlock(exec, store);
    const verified = certOf(b1.height, b1.hash, [0, 1]);
    await store.putCommitCertificate(verified, { verified: true });
    assert.equal(store.certificateVerified(verified), true);
    assert.equal(store.certificateVerified(store.commitCertificateSync(1n)!), true, 'the object put');
    assert.equal(store.certificateVerified({ ...verified }), false, 'an equal copy is not that object');
    const b2 = await nextBlock(exec, store);
    const plain = certOf(b2.height, b2.hash, [0, 1]);
    await store.putCommitCertificate(plain);
    assert.equal(store.certificateVerified(plain), false, 'put without `verified`');
    const b3 = await store.getBlock(2n);
    assert.equal(
      store.certificateVerified(b3!.parentCommit!),
      true,
      'block 2 carries the object as parentCommit',
    );
    await store.close();
    const again = await open();
    const fromDisk = again.commitCertificateSync(1n)!;
    assert.deepEqual(fromDisk, verified);
    assert.equal(again.certificateVerified(fromDisk), false, 'read back after a restart');
    await again.close();
  });
});
