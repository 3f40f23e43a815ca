// `npm run bench -- block-write [--quick]`: the CPU and allocation per tx of executing and
// writing blocks as a validator under batched saturation does, old against new (ledger/), in
// one process. "old" is ledger/executor.js and ledger/store.js of the build in
// BLOCK_WRITE_BENCH_BASELINE (a git-archived earlier commit compiled with tsc --outDir, e.g.
// f39f70e, the code before 618d8e2: bench/results/block-write.json holds that A/B); without it
// "old" is the current code too, an A/A run that shows the noise.
//
// Workload: blocks of 140 signed transfers (what blocks average at saturation) from 384
// senders taken in turn, 9 in 10 to one recipient and the rest to another sender. Signed
// before the timing; the executor is told every signature is verified (as the mempool
// tells it for txs it checked), so Ed25519 is out of the measurement, but decoding, hashing,
// execution, the Merkle root, the block encoding and the LevelDB batch are all in. Each
// block's commit certificate (two dummy signatures: the store does not check them) is put
// before the next block, which carries it, as on a validator. Two scenarios: 'transfers'
// (every tx valid) and 'with-replays', where each block also carries the previous block's
// first tx again: it fails bad-nonce, and the store then looks up its earlier location (a
// read, the write path's only one). Per-tx figures divide by the 140 transfers of a block.
//
// Each implementation writes the same chain into its own fresh LevelDB on disk (os.tmpdir()),
// opened with sync off: an fsync costs wall time, not the CPU this measures. A round runs
// the next blocks on both implementations, taking turns every CHUNK_BLOCKS blocks (who goes
// first alternates), and checks that both reached the same tip hash and state digest.
//
// Reported, medians over the rounds after a warm-up round:
//   mainUsPerTx     CPU of the main thread (its /proc schedstat run time, ns resolution);
//   processUsPerTx  CPU of the whole process (process.cpuUsage: adds LevelDB's write on the
//                   libuv pool and V8's GC helper threads);
//   bytesPerTx      bytes allocated on the JS heap per tx, from V8's sampling heap profiler
//                   counting objects collected since (one extra round per implementation).
//                   Off-heap backing stores of typed arrays over 64 bytes are not counted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeBatch } from '../ledger/batch.js';
import type { CommitCertificate } from '../ledger/block.js';
import { toHex } from '../ledger/codec/binary.js';
import { Executor } from '../ledger/executor.js';
import { type KeyPair, keyPairFromSeed, sha256 } from '../ledger/keys.js';
import { LedgerStore } from '../ledger/store.js';
import { encodeTx, signTx } from '../ledger/tx.js';
import { writeResult } from './_results.js';
import { median } from './_stats.js';

const CHAIN = 'bench-chain';
const SENDERS = 384;
const BLOCK_TXS = 140;
const GENESIS_HASH = sha256(new TextEncoder().encode('block-write bench genesis'));

/** What the bench uses of either implementation's executor and store. */
interface Impl {
  name: 'old' | 'new';
  execute(order: bigint, batch: Uint8Array): Promise<{ height: bigint; hash: Uint8Array }>;
  putCertificate(c: CommitCertificate): Promise<void>;
  tip(): { hash: string; stateDigest: string };
  close(): Promise<void>;
}

function seedKey(i: number): KeyPair {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(28, i + 1);
  return keyPairFromSeed(seed);
}

/** `blocks` encoded batches of BLOCK_TXS signed transfers (see the header). */
function workload(
  blocks: number,
  replays: boolean,
): {
  batches: Uint8Array[];
  genesisAccounts: { address: Uint8Array; balance: bigint }[];
} {
  const senders = Array.from({ length: SENDERS }, (_, i) => seedKey(i));
  const recipient = seedKey(SENDERS);
  const nonces = new Array<bigint>(SENDERS).fill(0n);
  const batches: Uint8Array[] = [];
  let previous: Uint8Array | null = null;
  let s = 0;
  for (let b = 0; b < blocks; b++) {
    const txs: Uint8Array[] = [];
    for (let i = 0; i < BLOCK_TXS; i++, s = (s + 1) % SENDERS) {
      const from = senders[s]!;
      const to = i % 10 === 9 ? senders[(s + 7) % SENDERS]! : recipient;
      nonces[s]! += 1n;
      const tx = {
        chainId: CHAIN,
        from: from.publicKey,
        nonce: nonces[s]!,
        payload: { type: 'transfer' as const, to: to.publicKey, amount: 1n + BigInt(i % 5) },
      };
      txs.push(encodeTx(signTx(tx, from.secretKey)));
    }
    // A replay (a client's retry, a tx gossiped late) fails bad-nonce; the store then looks up
    // whether the tx index has it already, the write path's one read.
    const withReplay = replays && previous !== null ? [...txs, previous] : txs;
    previous = txs[0]!;
    batches.push(encodeBatch({ timestampMs: 1_700_000_000_000n + BigInt(b), txs: withReplay }));
  }
  const genesisAccounts = senders.map((k) => ({ address: k.publicKey, balance: 1n << 40n }));
  return { batches, genesisAccounts };
}

const DUMMY_SIGNATURE = new Uint8Array(64);

/** The baseline build's executor and store (see the header), or the current ones. */
async function baseline(): Promise<{ Store: typeof LedgerStore; Exec: typeof Executor }> {
  const dir = process.env.BLOCK_WRITE_BENCH_BASELINE;
  if (dir === undefined) return { Store: LedgerStore, Exec: Executor };
  const load = (rel: string) => import(pathToFileURL(resolve(dir, 'ledger', rel)).href);
  const [st, ex] = (await Promise.all([load('store.js'), load('executor.js')])) as [
    { LedgerStore: typeof LedgerStore },
    { Executor: typeof Executor },
  ];
  return { Store: st.LedgerStore, Exec: ex.Executor };
}

async function openImpl(
  name: 'old' | 'new',
  dir: string,
  genesisAccounts: { address: Uint8Array; balance: bigint }[],
): Promise<Impl> {
  const opts = { genesisHash: GENESIS_HASH, genesisAccounts, genesisTimeMs: 0n, sync: false };
  const verified = () => true;
  // The two classes have the same public shape; each is driven through its own module.
  const { Store, Exec } = name === 'new' ? { Store: LedgerStore, Exec: Executor } : await baseline();
  const store = await Store.open(dir, opts);
  const exec = new Exec({ store, chainId: CHAIN, signatureVerified: verified });
  return {
    name,
    async execute(order, batch) {
      const e = await exec.executeBatchDetailed({ order, view: 0n, proposer: 0, batch }).executed;
      return { height: e.block.header.height, hash: e.hash };
    },
    putCertificate: (c) => store.putCommitCertificate(c, { verified: true }),
    tip() {
      const t = store.latestTip();
      return { hash: toHex(t.hash), stateDigest: toHex(t.stateDigest) };
    },
    close: () => store.close(),
  };
}

/** CPU time of this thread (the main one) so far, in ns, from the kernel's scheduler stats. */
function mainThreadCpuNs(): number {
  const s = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'latin1');
  return Number(s.slice(0, s.indexOf(' ')));
}
const processCpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function runBlocks(impl: Impl, batches: Uint8Array[], from: number, to: number): Promise<void> {
  for (let o = from; o < to; o++) {
    const { height, hash } = await impl.execute(BigInt(o), batches[o]!);
    const signatures = [0, 1].map((validator) => ({ validator, signature: DUMMY_SIGNATURE }));
    await impl.putCertificate({ height, blockHash: hash, signatures });
  }
}

interface Sample {
  mainUsPerTx: number;
  processUsPerTx: number;
}

/** Blocks one implementation runs before the other takes its turn, within a round. */
const CHUNK_BLOCKS = 5;

/**
 * Runs blocks [from, to) on both implementations, CHUNK_BLOCKS at a time, taking turns (who
 * goes first alternates), so both see the same load on this shared machine: a whole round on
 * one, then on the other, let the other helpers' load decide the ratio.
 */
async function timedRound(impls: readonly Impl[], batches: Uint8Array[], from: number, to: number) {
  const cpu = new Map(impls.map((i) => [i.name, { mainNs: 0, processUs: 0 }]));
  for (let b = from, turn = 0; b < to; b += CHUNK_BLOCKS, turn++) {
    const end = Math.min(to, b + CHUNK_BLOCKS);
    for (const impl of turn % 2 === 0 ? impls : [...impls].reverse()) {
      const main0 = mainThreadCpuNs();
      const proc0 = processCpuUs();
      await runBlocks(impl, batches, b, end);
      const c = cpu.get(impl.name)!;
      c.mainNs += mainThreadCpuNs() - main0;
      c.processUs += processCpuUs() - proc0;
    }
  }
  const txs = (to - from) * BLOCK_TXS;
  const sample = (name: 'old' | 'new'): Sample => {
    const c = cpu.get(name)!;
    return { mainUsPerTx: c.mainNs / 1000 / txs, processUsPerTx: c.processUs / txs };
  };
  return { old: sample('old'), new: sample('new') };
}

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

/** Bytes allocated on the JS heap per tx while `impl` runs blocks [from, to) (see the header). */
async function allocatedPerTx(impl: Impl, batches: Uint8Array[], from: number, to: number): Promise<number> {
  const s = new Session();
  s.connect();
  const post = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve, reject) => s.post(method, params, (e, res) => (e ? reject(e) : resolve(res))));
  try {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await runBlocks(impl, batches, from, to);
    const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: SamplingNode } };
    await post('HeapProfiler.disable');
    let total = 0;
    const walk = (n: SamplingNode): void => {
      total += n.selfSize;
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    return Math.round(total / ((to - from) * BLOCK_TXS));
  } finally {
    s.disconnect();
  }
}

interface Scenario {
  name: 'transfers' | 'with-replays';
  /** Each block also carries a copy of the previous block's first tx (it fails bad-nonce). */
  replays: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'transfers', replays: false },
  { name: 'with-replays', replays: true },
];

interface Row {
  mainUsPerTx: number;
  processUsPerTx: number;
  bytesPerTx: number;
}

/** One scenario: both implementations on fresh databases, alternated round by round. */
async function scenario(sc: Scenario, rounds: number, blocksPerRound: number) {
  // Warm-up round, measured rounds, one allocation round.
  const totalBlocks = (rounds + 2) * blocksPerRound;
  const { batches, genesisAccounts } = workload(totalBlocks, sc.replays);
  const root = mkdtempSync(join(os.tmpdir(), 'block-write-bench-'));
  const impls: Impl[] = [];
  const samples: Record<'old' | 'new', Sample[]> = { old: [], new: [] };
  const bytesPerTx: Record<'old' | 'new', number> = { old: 0, new: 0 };
  try {
    impls.push(await openImpl('old', join(root, 'old'), genesisAccounts));
    impls.push(await openImpl('new', join(root, 'new'), genesisAccounts));
    for (let r = 0; r <= rounds; r++) {
      const from = r * blocksPerRound;
      const got = await timedRound(
        r % 2 === 0 ? impls : [...impls].reverse(),
        batches,
        from,
        from + blocksPerRound,
      );
      if (r > 0) {
        // Round 0 warms up the JIT and the databases.
        samples.old.push(got.old);
        samples.new.push(got.new);
      }
      const [a, b] = impls.map((i) => i.tip());
      if (a!.hash !== b!.hash || a!.stateDigest !== b!.stateDigest)
        throw new Error(`old and new diverged after round ${r}: ${JSON.stringify([a, b])}`);
    }
    const from = (rounds + 1) * blocksPerRound;
    for (const impl of impls)
      bytesPerTx[impl.name] = await allocatedPerTx(impl, batches, from, from + blocksPerRound);
  } finally {
    for (const impl of impls) await impl.close();
    rmSync(root, { recursive: true, force: true });
  }
  const med = (name: 'old' | 'new', k: keyof Sample) => median(samples[name].map((x) => x[k]));
  const row = (name: 'old' | 'new'): Row => ({
    mainUsPerTx: Number(med(name, 'mainUsPerTx').toFixed(2)),
    processUsPerTx: Number(med(name, 'processUsPerTx').toFixed(2)),
    bytesPerTx: bytesPerTx[name],
  });
  const old = row('old');
  const cur = row('new');
  // Ratios per round (each round's old and new ran back to back), then their median.
  const ratio = (k: keyof Sample) =>
    Number(median(samples.new.map((x, i) => x[k] / samples.old[i]![k])).toFixed(3));
  return {
    scenario: sc.name,
    old,
    new: cur,
    newOverOld: {
      mainCpu: ratio('mainUsPerTx'),
      processCpu: ratio('processUsPerTx'),
      bytes: Number((cur.bytesPerTx / old.bytesPerTx).toFixed(3)),
    },
    savedMainUsPerTx: Number((old.mainUsPerTx - cur.mainUsPerTx).toFixed(2)),
    savedProcessUsPerTx: Number((old.processUsPerTx - cur.processUsPerTx).toFixed(2)),
    samples,
  };
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const rounds = opts.quick ? 3 : 7;
  const blocksPerRound = opts.quick ? 20 : 60;
  const scenarios = [];
  for (const sc of SCENARIOS) scenarios.push(await scenario(sc, rounds, blocksPerRound));
  const result = {
    bench: 'block-write',
    date: new Date().toISOString(),
    node: process.version,
    quick: opts.quick,
    workload: { blockTxs: BLOCK_TXS, senders: SENDERS, blocksPerRound, rounds, leveldbSync: false },
    scenarios,
    notes: [
      process.env.BLOCK_WRITE_BENCH_BASELINE === undefined
        ? 'old = new = ledger/ (no BLOCK_WRITE_BENCH_BASELINE: an A/A run)'
        : `old = ${process.env.BLOCK_WRITE_BENCH_BASELINE}/ledger; new = ledger/`,
      'signatures marked verified (no Ed25519); LevelDB on disk with sync off',
      "with-replays: each block also carries the previous block's first tx again (bad-nonce, its location looked up)",
      'mainUsPerTx: main thread run time from /proc/self/task/<pid>/schedstat; processUsPerTx: process.cpuUsage',
      'bytesPerTx: V8 sampling heap profiler (512-byte interval, collected objects included), whole process, one round each',
    ],
  };
  console.log(
    `block-write: ${BLOCK_TXS}-tx blocks, ${blocksPerRound} blocks per round, ${rounds} rounds (medians)`,
  );
  console.log('scenario      impl  main us/tx  process us/tx  bytes/tx');
  for (const sc of scenarios) {
    for (const [n, r] of [
      ['old', sc.old],
      ['new', sc.new],
    ] as const)
      console.log(
        `${sc.scenario.padEnd(12)}  ${n.padEnd(4)}  ${r.mainUsPerTx.toFixed(2).padStart(10)}  ${r.processUsPerTx.toFixed(2).padStart(13)}  ${String(r.bytesPerTx).padStart(8)}`,
      );
    console.log(
      `${sc.scenario.padEnd(12)}  new/old: main ${sc.newOverOld.mainCpu}, process ${sc.newOverOld.processCpu}, bytes ${sc.newOverOld.bytes}; saved ${sc.savedMainUsPerTx} us/tx main, ${sc.savedProcessUsPerTx} process`,
    );
  }
  writeResult('block-write', result);
  return result;
}
