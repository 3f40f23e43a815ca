// A block written together with metadata records in one atomic batch (the node puts its
// consensus state there at low load, node/validator.ts drainFused), over real LevelDB and
// the real executor.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBatch } from '../../ledger/batch.js';
import { toHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { sha256 } from '../../ledger/keys.js';
import { LedgerStore } from '../../ledger/store.js';
import { bytes, CHAIN, seedKey, signed, tempDir, transfer } from './helpers.js';

const genesisHash = sha256(bytes('block meta test genesis'));
const alice = seedKey(1);
const bob = seedKey(2);

const batchOf = (nonce: bigint): Uint8Array =>
  encodeBatch({ timestampMs: 1000n + nonce, txs: [signed(alice, nonce, transfer(bob, 5n))] });

describe('ledger/executor and store: metadata written in a block batch', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir('block-meta');
  });
  afterEach(() => t.cleanup());

  const open = (sync = true) =>
    LedgerStore.open(t.dir, {
      genesisHash,
      genesisAccounts: [{ address: alice.publicKey, balance: 1000n }],
      sync,
    });

  it('puts the records on disk with the block, readable after a reopen', async () => {
    const store = await open();
    const exec = new Executor({ store, chainId: CHAIN });
    const big = new Uint8Array(64 * 1024).fill(7); // larger than the block: written after it
    const block = await exec.executeBatch({
      order: 0n,
      view: 0n,
      proposer: 0,
      batch: batchOf(1n),
      meta: [
        { name: 'consensus/p0/header', value: bytes('header') },
        { name: 'consensus/p0/slot/0', value: big },
      ],
    });
    assert.equal(block.header.height, 1n);
    assert.equal(store.durableHeight(), 1n);
    assert.deepEqual(await store.getMeta('consensus/p0/header'), bytes('header'));
    assert.deepEqual(await store.getMeta('consensus/p0/slot/0'), big);
    await store.close();

    const again = await open();
    try {
      assert.equal(again.latestHeight(), 1n);
      assert.equal((await again.getBlock(1n))?.txs.length, 1);
      assert.deepEqual(await again.getMeta('consensus/p0/header'), bytes('header'));
      assert.deepEqual(await again.getMeta('consensus/p0/slot/0'), big);
      assert.equal((await again.getAccount(bob.publicKey)).balance, 5n);
    } finally {
      await again.close();
    }
  });

  it("keeps a name's last record when the records repeat a name", async () => {
    const store = await open(false);
    try {
      const exec = new Executor({ store, chainId: CHAIN });
      await exec.executeBatch({
        order: 0n,
        view: 0n,
        proposer: 0,
        batch: batchOf(1n),
        meta: [
          { name: 'a', value: bytes('first, and longer than the second') },
          { name: 'b', value: bytes('b') },
          { name: 'a', value: bytes('second') },
        ],
      });
      assert.deepEqual(await store.getMeta('a'), bytes('second'));
      assert.deepEqual(await store.getMeta('b'), bytes('b'));
    } finally {
      await store.close();
    }
  });

  it('writes none of the records of a batch it refuses', async () => {
    const store = await open();
    try {
      const exec = new Executor({ store, chainId: CHAIN });
      await assert.rejects(
        exec.executeBatch({
          order: 5n,
          view: 0n,
          proposer: 0,
          batch: batchOf(1n),
          meta: [{ name: 'consensus/p0/header', value: bytes('header') }],
        }),
        /order 5 submitted, expected 0/,
      );
      assert.equal(await store.getMeta('consensus/p0/header'), null);
      assert.equal(store.latestHeight(), 0n);
      assert.ok(exec.idle(), 'a refused batch is not in flight');
    } finally {
      await store.close();
    }
  });

  it('is idle only when no handed-over batch is still being applied or written', async () => {
    const store = await open();
    try {
      const exec = new Executor({ store, chainId: CHAIN });
      assert.ok(exec.idle());
      const first = exec.executeBatchDetailed({ order: 0n, view: 0n, proposer: 0, batch: batchOf(1n) });
      const second = exec.executeBatchDetailed({ order: 1n, view: 0n, proposer: 0, batch: batchOf(2n) });
      assert.ok(!exec.idle());
      await first.executed;
      assert.ok(!exec.idle(), 'the second block is still in flight');
      const b = await second.executed;
      // A caller resuming on `executed` already sees the executor idle (the node decides on it then).
      assert.ok(exec.idle());
      assert.equal(store.durableHeight(), b.block.header.height);
    } finally {
      await store.close();
    }
  });

  it('leaves each block with its records or neither when the process is killed mid-write', async function () {
    this.timeout(60_000);
    const child = join(dirname(fileURLToPath(import.meta.url)), 'meta-crash-child.js');
    for (const killAt of [5, 23]) {
      const seen = await new Promise<number>((resolve, reject) => {
        const p = spawn(process.execPath, [child, t.dir, toHex(genesisHash)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let durable = 0;
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        p.stdout.on('data', (d: Buffer) => {
          for (const m of d.toString().matchAll(/durable (\d+)/g)) durable = Math.max(durable, Number(m[1]));
          if (durable >= killAt && p.exitCode === null && !p.killed) p.kill('SIGKILL');
        });
        p.on('error', reject);
        p.on('exit', (_code, signal) =>
          signal === 'SIGKILL' ? resolve(durable) : reject(new Error(`child exited: ${stderr}`)),
        );
      });
      const store = await LedgerStore.open(t.dir, { genesisHash });
      try {
        const tip = store.latestHeight();
        assert.ok(tip >= BigInt(seen), `tip ${tip} below the reported durable height ${seen}`);
        assert.equal(
          new TextDecoder().decode((await store.getMeta('last')) ?? new Uint8Array()),
          String(tip),
        );
        const own = await store.getMeta(`h/${tip}`);
        assert.equal(own?.length, 32 * 1024);
        assert.equal(own?.[0], Number(tip % 251n));
        assert.equal(await store.getMeta(`h/${tip + 1n}`), null, 'a record of a block that is not there');
      } finally {
        await store.close();
      }
    }
  });
});
