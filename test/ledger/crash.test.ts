import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBatch } from '../../ledger/batch.js';
import { blockHash, checkBlockBody } from '../../ledger/block.js';
import { bytesEqual, toHex } from '../../ledger/codec/binary.js';
import { sha256 } from '../../ledger/keys.js';
import { MemoryState } from '../../ledger/state.js';
import { LedgerStore } from '../../ledger/store.js';
import { bytes, CHAIN, seedKey, signed, tempDir, transfer } from './helpers.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const BLOCKS = 40;
const TXS_PER_BLOCK = 150;

/** Runs the child until it reports `killAt` durable blocks, then SIGKILLs it. Returns the last durable height seen. */
function runAndKill(
  dir: string,
  plan: string,
  killAt: number,
): Promise<{ durable: number; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, plan], { stdio: ['ignore', 'pipe', 'pipe'] });
    let durable = 0;
    let finished = false;
    let buf = '';
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^durable (\d+)$/.exec(line);
        if (m) durable = Number(m[1]);
        if (line === 'done') finished = true;
        if (durable >= killAt && p.exitCode === null && !p.killed) p.kill('SIGKILL');
        nl = buf.indexOf('\n');
      }
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve({ durable, finished });
    });
  });
}

describe('ledger/store crash recovery', function () {
  this.timeout(120_000);

  it('reopens at a block boundary matching a replay after kill -9 in the middle of a load', async () => {
    const t = tempDir('crash');
    try {
      const keys = Array.from({ length: 30 }, (_, i) => seedKey(100 + i));
      const accounts = keys.map((k) => ({ address: k.publicKey, balance: 1_000_000n }));
      const nonces = keys.map(() => 0n);
      const batches: Uint8Array[][] = [];
      for (let b = 0; b < BLOCKS; b++) {
        const txs: Uint8Array[] = [];
        for (let i = 0; i < TXS_PER_BLOCK; i++) {
          const s = (b * TXS_PER_BLOCK + i) % keys.length;
          nonces[s]! += 1n;
          txs.push(
            i % 10 === 0
              ? signed(keys[s]!, nonces[s]!, {
                  type: 'kv.put',
                  key: bytes(`k${i % 7}`),
                  value: bytes(`b${b}`),
                })
              : signed(keys[s]!, nonces[s]!, transfer(keys[(s + 1) % keys.length]!, 3n)),
          );
        }
        batches.push(txs);
      }
      const genesisHash = sha256(bytes('crash genesis'));
      const planPath = join(t.dir, 'plan.json');
      writeFileSync(
        planPath,
        JSON.stringify({
          chainId: CHAIN,
          genesisHash: toHex(genesisHash),
          accounts: accounts.map((a) => ({ address: toHex(a.address), balance: a.balance.toString() })),
          batches: batches.map((txs, i) => toHex(encodeBatch({ timestampMs: BigInt(1000 + i), txs }))),
        }),
      );
      const dbDir = join(t.dir, 'db');

      let lastHeight = 0n;
      for (const killAt of [4, 15, 27]) {
        const run = await runAndKill(dbDir, planPath, killAt);
        assert.equal(run.finished, false, 'the child was killed before it finished');
        const store = await LedgerStore.open(dbDir, { genesisHash });
        try {
          const h = store.latestHeight();
          assert.ok(
            h >= BigInt(run.durable),
            `tip ${h} is below the last reported durable block ${run.durable}`,
          );
          assert.ok(h >= lastHeight);
          lastHeight = h;
          // Replay the same batches in memory: the stored tip must be exactly that state.
          const mem = new MemoryState(accounts);
          let prev = genesisHash;
          for (let i = 1n; i <= h; i++) {
            const blk = await store.getBlock(i);
            assert.ok(blk, `block ${i} missing`);
            assert.ok(checkBlockBody(blk).ok);
            assert.ok(bytesEqual(blk.header.prevHash, prev), `block ${i} does not link to its parent`);
            prev = blockHash(blk.header);
            mem.applyBlock(batches[Number(i) - 1]!, CHAIN);
            assert.ok(bytesEqual(blk.header.stateDigest, mem.digest), `state digest differs at ${i}`);
          }
          assert.ok(bytesEqual(store.latestBlockHash(), prev));
          assert.ok(bytesEqual(store.latestTip().stateDigest, mem.digest));
          for (const k of keys) {
            const acct = await store.getAccount(k.publicKey);
            const want = mem.accounts.get(toHex(k.publicKey));
            assert.deepEqual(acct, want, `account ${toHex(k.publicKey)} at height ${h}`);
          }
        } finally {
          await store.close();
        }
      }
    } finally {
      t.cleanup();
    }
  });
});
