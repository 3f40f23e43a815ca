// `npm run bench -- ledger [--quick]`: signs N transfers (100k; 10k with --quick) from 1,000
// senders, cuts them into blocks of 1,000, then measures tx/s for
//   verify   Ed25519 verification of every tx alone,
//   execute  the state machine alone (prechecked txs, in memory: nonce, balances, digest,
//            tx Merkle root and results hash),
//   persist  LevelDB writes alone (prebuilt blocks and state changes, one batch per block),
//   all      the real path: Executor.executeBatch from encoded batches to a fresh store
//            (decode, verify, execute, persist), up to eight blocks in flight.
// Goal: all >= 60% of verify, measured in the same run. Also records the primitive choice
// (node:crypto vs @noble for Ed25519 and SHA-256). Writes bench/results/ledger.json.
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { encodeBatch } from '../ledger/batch.js';
import { type Block, type BlockHeader, blockHash, resultsHash } from '../ledger/block.js';
import { Executor } from '../ledger/executor.js';
import { type KeyPair, keyPairFromSeed, sha256, sign, verify } from '../ledger/keys.js';
import { merkleRoot } from '../ledger/merkle.js';
import { applyTxs, type BlockOutcome, MemoryState, precheckTxs } from '../ledger/state.js';
import { LedgerStore } from '../ledger/store.js';
import { encodeTx, signingBytesOfEncoded, signTx } from '../ledger/tx.js';
import { writeResult } from './_results.js';
import { median } from './_stats.js';

const CHAIN = 'bench-chain';
const BLOCK_TXS = 1000;
const SENDERS = 1000;

function rate(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function primitives(quick: boolean) {
  const reps = quick ? 1 : 3;
  const seed = new Uint8Array(crypto.randomBytes(32));
  const kp = keyPairFromSeed(seed);
  const msg = new Uint8Array(crypto.randomBytes(150));
  const sig = sign(msg, seed);
  const small = new Uint8Array(crypto.randomBytes(65));
  const m = (n: number, op: () => void) =>
    Math.round(
      median(
        Array.from({ length: reps }, () =>
          rate(n, () => {
            for (let i = 0; i < n; i++) op();
          }),
        ),
      ),
    );
  return {
    ed25519VerifyPerSec: {
      nodeCrypto: m(2000, () => verify(sig, msg, kp.publicKey)),
      noble: m(200, () => ed25519.verify(sig, msg, kp.publicKey)),
    },
    ed25519SignPerSec: {
      nodeCrypto: m(2000, () => sign(msg, seed)),
      noble: m(200, () => ed25519.sign(msg, seed)),
    },
    sha256Of65BytesPerSec: {
      nodeCrypto: m(50_000, () => sha256(small)),
      noble: m(50_000, () => nobleSha256(small)),
    },
  };
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const total = opts.quick ? 10_000 : 100_000;
  const blocks = total / BLOCK_TXS;
  const prim = primitives(opts.quick);

  // ---- setup (not timed): keys, genesis balances, signed transfers ----
  const keys: KeyPair[] = Array.from({ length: SENDERS }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    return keyPairFromSeed(seed);
  });
  const genesisAccounts = keys.map((k) => ({ address: k.publicKey, balance: 1_000_000_000n }));
  const nonces = new Array<bigint>(SENDERS).fill(0n);
  const txs: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    const s = i % SENDERS;
    nonces[s]! += 1n;
    const to = keys[(s * 7 + 13) % SENDERS]!.publicKey;
    txs.push(
      encodeTx(
        signTx(
          {
            chainId: CHAIN,
            from: keys[s]!.publicKey,
            nonce: nonces[s]!,
            payload: { type: 'transfer', to, amount: 3n },
          },
          keys[s]!.secretKey,
        ),
      ),
    );
  }
  const batches: Uint8Array[][] = [];
  for (let b = 0; b < blocks; b++) batches.push(txs.slice(b * BLOCK_TXS, (b + 1) * BLOCK_TXS));
  const genesisHash = sha256(new TextEncoder().encode('bench genesis'));
  const tmp = mkdtempSync(join(os.tmpdir(), 'ledger-bench-'));

  try {
    // A short warm-up so the JIT has compiled every path before anything is timed.
    await measure(batches.slice(0, 3), genesisAccounts, genesisHash, join(tmp, 'warmup'));
    const m = await measure(batches, genesisAccounts, genesisHash, join(tmp, 'run'));
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
      txs: total,
      blockTxs: BLOCK_TXS,
      senders: SENDERS,
      syncWrites: true,
      txPerSec: m.wall,
      // Rates per second of process CPU time (main thread plus LevelDB's threads): steadier
      // than wall clock on a shared machine, and shows what each stage really costs.
      txPerCpuSec: m.cpu,
      verifyRunsTxPerSec: m.verifyRuns,
      allOverVerify: Math.round((m.wall.all / m.wall.verify) * 1000) / 1000,
      goalAllOverVerify: 0.6,
      goalMet: m.wall.all / m.wall.verify >= 0.6,
      // The same ratio on CPU time. On a box with more runnable threads than cores, wall-clock
      // rates swing with other load (and a process with more busy threads gets more CPU share),
      // so this is the steadier answer to "is storage or execution the bottleneck".
      allOverVerifyCpu: Math.round((m.cpu.all / m.cpu.verify) * 1000) / 1000,
      goalMetCpu: m.cpu.all / m.cpu.verify >= 0.6,
      stateDigestMatchesReplay: true,
      primitives: prim,
      choice: {
        ed25519: 'node:crypto',
        sha256: 'node:crypto',
      },
    };
    console.table({ 'tx/s (wall)': result.txPerSec, 'tx/cpu-s': result.txPerCpuSec });
    console.log(
      `all/verify = ${result.allOverVerify} wall, ${result.allOverVerifyCpu} cpu (goal >= 0.6: ` +
        `${result.goalMet ? 'met' : 'NOT met'} wall, ${result.goalMetCpu ? 'met' : 'NOT met'} cpu); primitives:`,
    );
    console.table({
      'ed25519 verify/s': prim.ed25519VerifyPerSec,
      'ed25519 sign/s': prim.ed25519SignPerSec,
      'sha256(65B)/s': prim.sha256Of65BytesPerSec,
    });
    writeResult('ledger', result);
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Rates {
  verify: number;
  execute: number;
  persist: number;
  all: number;
}

async function timed(n: number, fn: () => Promise<void> | void): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall: Math.round(n / wallS), cpu: Math.round(n / ((c.user + c.system) / 1e6)) };
}

/**
 * Runs the four stages over `batches`. Verification is timed before and after the
 * all-together run and the median (mean of two) is used, so a load change on a shared machine
 * during the run biases the ratio less.
 */
async function measure(
  batches: Uint8Array[][],
  genesisAccounts: { address: Uint8Array; balance: bigint }[],
  genesisHash: Uint8Array,
  dir: string,
): Promise<{ wall: Rates; cpu: Rates; verifyRuns: number[] }> {
  const txs = batches.flat();
  const total = txs.length;
  const blocks = batches.length;

  // ---- verify alone: Ed25519 over each tx's signed bytes ----
  const signed = txs.map((t) => ({ msg: signingBytesOfEncoded(t), sig: t.subarray(t.length - 64) }));
  const froms = txs.map((t) => t.subarray(5 + CHAIN.length, 5 + CHAIN.length + 32));
  const verifyAll = () => {
    for (let i = 0; i < total; i++) {
      if (!verify(signed[i]!.sig, signed[i]!.msg, froms[i]!)) throw new Error('bench tx did not verify');
    }
  };
  const verify1 = await timed(total, verifyAll);

  // ---- execute alone: state machine over prechecked txs, in memory ----
  const prechecked = batches.map((b) => precheckTxs(b, CHAIN));
  const mem = new MemoryState(genesisAccounts);
  const outcomes: BlockOutcome[] = [];
  const headers: BlockHeader[] = [];
  let prevHash = genesisHash;
  const execute = await timed(total, () => {
    for (let b = 0; b < blocks; b++) {
      const height = BigInt(b + 1);
      const out = applyTxs(mem, prechecked[b]!, height, mem.digest);
      for (const [k, w] of out.accountWrites) mem.accounts.set(k, w.account);
      mem.digest = out.stateDigest;
      const header: BlockHeader = {
        chainId: CHAIN,
        height,
        prevHash,
        txRoot: merkleRoot(prechecked[b]!.map((p) => p.hash)),
        resultsHash: resultsHash(out.results),
        stateDigest: out.stateDigest,
        timestampMs: height,
        view: 0n,
        order: height - 1n,
        proposer: 0,
        txCount: batches[b]!.length,
      };
      prevHash = blockHash(header);
      outcomes.push(out);
      headers.push(header);
    }
  });
  if (!outcomes.every((o) => o.results.every((r) => r.ok))) throw new Error('bench txs failed to execute');

  // ---- persist alone: prebuilt blocks into a fresh store ----
  const persistStore = await LedgerStore.open(join(dir, 'persist'), { genesisHash, genesisAccounts });
  const persist = await timed(total, async () => {
    for (let b = 0; b < blocks; b++) {
      const block: Block = {
        header: headers[b]!,
        txs: batches[b]!,
        results: outcomes[b]!.results,
        parentCommit: null,
      };
      await persistStore.writeBlock({
        block,
        hash: blockHash(headers[b]!),
        txHashes: prechecked[b]!.map((p) => p.hash),
        txAccounts: prechecked[b]!.map((p) => {
          const pl = p.tx!.payload;
          return pl.type === 'transfer' ? [p.tx!.from, pl.to] : [p.tx!.from];
        }),
        accountWrites: outcomes[b]!.accountWrites.values(),
        kvLog: [],
      });
    }
  });
  await persistStore.close();

  // ---- all together: Executor from encoded batches ----
  const encoded = batches.map((b, i) => encodeBatch({ timestampMs: BigInt(i + 1), txs: b }));
  const store = await LedgerStore.open(join(dir, 'all'), { genesisHash, genesisAccounts });
  const exec = new Executor({ store, chainId: CHAIN });
  const all = await timed(total, async () => {
    // Up to eight blocks in flight, as a node has when consensus runs ahead (batch.inflightMax = 8).
    const inFlight: Promise<Block>[] = [];
    for (let b = 0; b < blocks; b++) {
      inFlight.push(exec.executeBatch({ order: BigInt(b), view: 0n, proposer: 0, batch: encoded[b]! }));
      if (inFlight.length >= 8) await inFlight.shift();
    }
    await Promise.all(inFlight);
  });
  const digestMatches = Buffer.compare(store.latestTip().stateDigest, mem.digest) === 0;
  await store.close();
  if (!digestMatches) throw new Error('executor state digest differs from the in-memory replay');

  const verify2 = await timed(total, verifyAll);
  const pick = (k: 'wall' | 'cpu'): Rates => ({
    verify: Math.round((verify1[k] + verify2[k]) / 2),
    execute: execute[k],
    persist: persist[k],
    all: all[k],
  });
  return { wall: pick('wall'), cpu: pick('cpu'), verifyRuns: [verify1.wall, verify2.wall] };
}
