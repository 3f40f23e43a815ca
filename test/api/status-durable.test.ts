// GET /v1/status reports the durable tip, never a block that is staged but still being
// written. A real one-validator node runs in this process (real LevelDB, real API socket);
// the block write is held in flight for real by keeping every libuv threadpool thread (where
// LevelDB runs its writes) parked in a blocking open() of a FIFO, and letting the pool work
// one drain at a time until the node has staged a block whose write is queued behind the
// gate. The store-level half of this is test/ledger/store-durable-tip.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, open, openSync, readFileSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateTestnet } from '../../genesis/generate.js';
import { fromHex, toHex } from '../../ledger/codec/binary.js';
import { encodeTx, signTx } from '../../ledger/tx.js';
import { type RunningValidator, startValidator } from '../../node/start.js';

const CHAIN_ID = 'status-durable-test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Parks libuv threadpool threads in open() of a FIFO (it blocks until a writer opens the
 * other end), so pool work queued behind a parked open waits. `step` queues a new parked
 * open and then frees one thread: that thread runs everything queued before the new one
 * and parks again, so work the main thread queues from then on waits for the next step.
 */
class ThreadpoolGate {
  private readonly parked: { path: string; fd: Promise<number> }[] = [];
  private readonly spare: string[] = [];
  private made = 0;

  constructor(
    private readonly dir: string,
    readonly threads: number,
  ) {}

  hold(): void {
    for (let i = 0; i < this.threads; i++) this.park();
  }

  /** Synchronous, so nothing the node does can slip in between queueing and freeing. */
  step(): boolean {
    this.park();
    return this.freeOne();
  }

  get parkedCount(): number {
    return this.parked.length;
  }

  async releaseAll(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.parked.length > 0) {
      // A parked open still queued (not on a thread yet) has no reader: retry once it runs.
      if (!this.freeOne()) {
        if (Date.now() > deadline) throw new Error(`${this.parked.length} gate opens never reached a thread`);
        await sleep(5);
      }
    }
  }

  private park(): void {
    let path = this.spare.pop();
    if (path === undefined) {
      path = join(this.dir, `gate-${this.made++}`);
      execFileSync('mkfifo', ['-m', '600', path]);
    }
    // The callback form: its fd is closed with closeSync, which needs no pool thread.
    const at = path;
    const fd = new Promise<number>((resolve, reject) =>
      open(at, 'r', (e, f) => (e ? reject(e) : resolve(f))),
    );
    this.parked.push({ path: at, fd });
  }

  /** Frees the oldest thread parked in open(); false when none is parked on a thread yet. */
  private freeOne(): boolean {
    for (let i = 0; i < this.parked.length; i++) {
      const p = this.parked[i] as { path: string; fd: Promise<number> };
      let w: number;
      try {
        // Non-blocking: fails with ENXIO unless a reader is in open() on a thread right now.
        w = openSync(p.path, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENXIO') continue;
        throw e;
      }
      closeSync(w);
      this.parked.splice(i, 1);
      void p.fd.then((fd) => {
        closeSync(fd);
        this.spare.push(p.path);
      });
      return true;
    }
    return false;
  }
}

const sink = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

describe('api: GET /v1/status reports the durable tip', function () {
  this.timeout(60_000);
  let dir: string;
  let running: RunningValidator | undefined;
  let gate: ThreadpoolGate | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-status-durable-'));
  });
  afterEach(async () => {
    // The node cannot stop (or even close LevelDB) while the pool is held.
    await gate?.releaseAll();
    gate = undefined;
    await running?.stop();
    running = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers with the last block on disk while the next block is staged and its write is in flight', async () => {
    const net = await generateTestnet({ validators: 1, outDir: join(dir, 'net'), chainId: CHAIN_ID });
    const node = net.nodes[0];
    assert.ok(node);
    running = await startValidator({
      home: node.home,
      flags: {
        'api.port': '0',
        'p2p.enabled': 'false',
        'transport.listen': '127.0.0.1:0',
        'log.level': 'warn',
      },
      logDestination: sink(),
    });
    const api = running.apiUrl as string;
    const v = running.validator;
    const store = v.store;
    const getStatus = async () => {
      const res = await fetch(`${api}/v1/status`);
      assert.equal(res.status, 200);
      return (await res.json()) as { height: number; latestBlockHash: string | null };
    };
    const key = JSON.parse(readFileSync(node.keyPath, 'utf8')) as { publicKey: string; secretKey: string };
    const tx = (nonce: bigint) =>
      toHex(
        encodeTx(
          signTx(
            {
              chainId: CHAIN_ID,
              from: fromHex(key.publicKey),
              nonce,
              payload: { type: 'transfer', to: new Uint8Array(32).fill(7), amount: 1n },
            },
            fromHex(key.secretKey),
          ),
        ),
      );
    const post = (hex: string, mode: 'async' | 'commit') =>
      fetch(`${api}/v1/txs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tx: hex, mode, timeoutMs: 20_000 }),
      });
    // One block on disk first, so the durable tip is a real block (not genesis).
    assert.equal((await post(tx(1n), 'commit')).status, 200);
    await store.flush();
    const durable = store.latestDurableTip();
    assert.equal(durable.height, 1n);
    assert.equal(store.latestHeight(), 1n);

    gate = new ThreadpoolGate(dir, Number(process.env.UV_THREADPOOL_SIZE ?? 4));
    gate.hold();
    // The gate really holds the pool: a stat queued behind it does not finish.
    let probed = false;
    const probe = stat(dir).then(() => {
      probed = true;
    });
    await sleep(150);
    assert.equal(probed, false, 'a threadpool job ran past the gate');

    const submitted = post(tx(2n), 'async');
    let staged = false;
    for (let i = 0; i < 400 && !staged; i++) {
      await sleep(10);
      // Checked and stepped in one synchronous run: a write the node queues after this
      // check lands behind the newly parked open.
      staged = store.latestHeight() > store.durableHeight();
      if (!staged) gate.step();
    }
    assert.ok(staged, 'the node never staged block 2');
    await probe;
    assert.equal(store.latestHeight(), 2n);
    assert.equal(store.durableHeight(), 1n);

    // Block 2 is staged (the executor and reads already see it) but not on disk.
    const during = await getStatus();
    assert.equal(store.durableHeight(), 1n, 'the write finished during the request: nothing was observed');
    assert.equal(during.height, 1);
    assert.equal(during.latestBlockHash, toHex(durable.hash));

    const inProcess = v.status();
    assert.equal(inProcess.height, 1n);
    assert.deepEqual(inProcess.latestBlockHash, durable.hash);

    await gate.releaseAll();
    assert.equal((await submitted).status, 202);
    await store.flush();
    assert.equal(store.durableHeight(), 2n);
    const after = await getStatus();
    assert.equal(after.height, 2);
    assert.equal(after.latestBlockHash, toHex(store.latestDurableTip().hash));
  });
});
