// `npm run bench -- network [--quick]`: a real 3-validator network on this machine
// (separate processes, LevelDB, replica transport), fed signed transfers through the
// REST API. For each transport (TCP, and libfabric with the best provider that runs
// here) it measures
//   saturation  committed tx/s with closed-loop clients (async submission) kept at most
//               a bounded backlog ahead of the commits (a real client backs off; an
//               unbounded backlog only measures how the mempool ages), plus the CPU the
//               validators and the load generator used per committed tx (/proc, Linux);
//   latency     commit latency p50/p99 at 50% of that rate and at a low fixed rate
//               (commit-mode submissions, open loop): as the validators measure it (tx
//               enters the mempool of the validator it was sent to -> its block is written
//               there) and as the client sees it (HTTP request -> 200 with the block's
//               commit certificate, which waits for f+1 block signatures).
// Transactions are signed before each phase, so the load generator spends its CPU on
// HTTP only (it shares the machine's cores with the validators it measures).
// Goals: saturation >= 50% of the signature-verification ceiling measured in the same
// run (2 cores x single-core Ed25519 verify rate / 3 validators); low-load p50 < 2 ms.
// Writes bench/results/network.json.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, sign, verify } from '../ledger/keys.js';
import { rdmaAvailable } from '../rdma-native/native.js';
import { type Account, loadAccounts, status, transfer } from '../test/helpers/client.js';
import { HttpLoadClient } from '../test/helpers/http-load.js';
import { startTestnet, type Testnet } from '../test/helpers/testnet.js';
import { repoRoot } from './_repo-root.js';

const CHAIN_ID = 'hybster-testnet';

/** Single-core Ed25519 verifications per second (node:crypto, the path the ledger uses). */
function verifyRate(durationMs: number): number {
  const kp = generateKeyPair();
  const msg = new Uint8Array(120).fill(7);
  const sig = sign(msg, kp.secretKey);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < durationMs) {
    for (let i = 0; i < 100; i++) if (verify(sig, msg, kp.publicKey)) n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** CPU seconds (user + system) a process used so far; null where /proc is not available. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

/** Transfers signed ahead of a phase, handed out in nonce order per account. */
class Presigned {
  private readonly queues: string[][];
  private readonly next: number[];
  constructor(
    private readonly accounts: Account[],
    private readonly to: Uint8Array,
    perAccount: number,
  ) {
    this.queues = accounts.map((a) =>
      Array.from({ length: perAccount }, () => transfer(CHAIN_ID, a, to, 1n).hex),
    );
    this.next = accounts.map(() => 0);
  }
  /** The account's next tx; signed now if the presigned ones ran out. */
  take(i: number): string {
    const q = this.queues[i] as string[];
    const k = this.next[i] as number;
    if (k < q.length) {
      this.next[i] = k + 1;
      return q[k] as string;
    }
    return transfer(CHAIN_ID, this.accounts[i] as Account, this.to, 1n).hex;
  }
}

/** POST /v1/txs; null when the connection failed (the caller retries). */
async function submitTx(
  client: HttpLoadClient,
  hex: string,
  mode: 'async' | 'commit',
  timeoutMs?: number,
): Promise<{ status: number } | null> {
  const body = JSON.stringify({ tx: hex, mode, ...(timeoutMs ? { timeoutMs } : {}) });
  return client.postJson('/v1/txs', body).catch(() => null);
}

async function committedTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith('hybster_txs_committed_total')) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);

interface LatencyResult {
  rateTxPerSec: number;
  /** Whether every mempool was empty when the phase started. */
  drained: boolean;
  txs: number;
  nodeCommitLatencyMs: { p50: number; p99: number; samples: number };
  clientCommitLatencyMs: { p50: number; p99: number; samples: number };
}

interface TransportResult {
  transport: string;
  provider?: string;
  saturationTxPerSec: number;
  saturationWindowSec: number;
  clients: number;
  /** Most txs accepted but not yet committed that the load generator allows. */
  backlogMax: number;
  rejectedFull: number;
  /** CPU ms per committed tx during the saturation window: each validator, and the load generator. */
  cpuMsPerTx: { validators: number[]; loadGenerator: number } | null;
  /** CPU cores busy during the window: each validator, and the load generator. */
  cpuCoresUsed: { validators: number[]; loadGenerator: number } | null;
  latencyRateTxPerSec: number;
  latencyTxs: number;
  nodeCommitLatencyMs: { p50: number; p99: number; samples: number };
  clientCommitLatencyMs: { p50: number; p99: number; samples: number };
  lowLoad: LatencyResult;
  viewChanges: number;
}

/**
 * Closed loop: each account submits its next transfer as soon as the previous one was
 * accepted, while the txs accepted but not committed (network-wide, from validator 0's
 * counter) stay under `backlogMax`.
 */
async function saturate(
  net: Testnet,
  accounts: Account[],
  txs: Presigned,
  seconds: number,
  backlogMax: number,
): Promise<{
  txPerSec: number;
  rejectedFull: number;
  cpuMsPerTx: TransportResult['cpuMsPerTx'];
  cpuCoresUsed: TransportResult['cpuCoresUsed'];
}> {
  let running = true;
  let rejectedFull = 0;
  let accepted = 0;
  const url0 = net.apiUrls[0] as string;
  const base = await committedTotal(url0);
  let committed = base;
  const poller = (async () => {
    while (running) {
      committed = await committedTotal(url0).catch(() => committed);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const http = net.apiUrls.map((u) => new HttpLoadClient(u, accounts.length));
  const loops = accounts.map(async (_a, i) => {
    const client = http[i % http.length] as HttpLoadClient;
    while (running) {
      while (running && accepted - (committed - base) >= backlogMax) {
        await new Promise((res) => setTimeout(res, 5));
      }
      const hex = txs.take(i);
      for (;;) {
        const r = await submitTx(client, hex, 'async');
        if (r && (r.status === 202 || r.status === 200)) break;
        if (r?.status === 503) rejectedFull++;
        if (!running) return;
        await new Promise((res) => setTimeout(res, 20));
      }
      accepted++;
    }
  });
  // Warm up (JIT, batches filling), then measure on validator 0's committed counter.
  await new Promise((r) => setTimeout(r, Math.min(3000, seconds * 300)));
  const pids = [...net.validators.map((v) => v.process?.pid), process.pid];
  const cpu0 = pids.map(cpuSeconds);
  const c0 = await committedTotal(url0);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c1 = await committedTotal(url0);
  const cpu1 = pids.map(cpuSeconds);
  const dt = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all([...loops, poller]);
  for (const c of http) c.close();
  const used = cpu0.map((c, i) => {
    const d = cpu1[i];
    return c === null || d === null || d === undefined ? null : d - c;
  });
  const n = c1 - c0;
  const ok = used.every((u) => u !== null) && n > 0;
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  const perTx = (u: number | null): number => r2(((u as number) * 1000) / n);
  const cores = (u: number | null): number => r2((u as number) / dt);
  return {
    txPerSec: n / dt,
    rejectedFull,
    cpuMsPerTx: ok
      ? { validators: used.slice(0, -1).map(perTx), loadGenerator: perTx(used.at(-1) ?? null) }
      : null,
    cpuCoresUsed: ok
      ? { validators: used.slice(0, -1).map(cores), loadGenerator: cores(used.at(-1) ?? null) }
      : null,
  };
}

/** Open loop at `rate` tx/s in commit mode; returns client-observed latencies. */
async function atRate(
  net: Testnet,
  accounts: Account[],
  txs: Presigned,
  rate: number,
  seconds: number,
): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const total = Math.max(1, Math.floor(rate * seconds));
  const intervalMs = 1000 / rate;
  const start = performance.now();
  // Each account has at most one tx in flight so its nonces stay in order.
  const busy = new Set<number>();
  const http = net.apiUrls.map((u) => new HttpLoadClient(u, accounts.length));
  for (let k = 0; k < total; k++) {
    const due = start + k * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let idx = k % accounts.length;
    for (let tries = 0; busy.has(idx) && tries < accounts.length; tries++) idx = (idx + 1) % accounts.length;
    if (busy.has(idx)) continue; // every account busy: the system is not keeping up; skip this slot
    busy.add(idx);
    const client = http[k % http.length] as HttpLoadClient;
    const hex = txs.take(idx);
    const t0 = performance.now();
    pending.push(
      submitTx(client, hex, 'commit', 10_000)
        .then((r) => {
          if (r?.status === 200) latencies.push(performance.now() - t0);
        })
        .finally(() => busy.delete(idx)),
    );
  }
  await Promise.all(pending);
  for (const c of http) c.close();
  return latencies.sort((x, y) => x - y);
}

/** Txs accepted but not committed that the saturation load keeps at most (two full batches). */
const BACKLOG_MAX = 2000;
const LOW_LOAD_TX_PER_SEC = 50;
const LOW_LOAD_SECONDS = 11;

const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Waits until every validator's mempool is empty; false after `timeoutMs` (a validator left
 * behind in a view change keeps its txs until it rejoins; the phase then runs anyway).
 */
async function waitDrained(net: Testnet, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ss = await Promise.all(net.apiUrls.map((u) => status(u).catch(() => null)));
    if (ss.every((s) => (s?.mempool as { txs?: number } | undefined)?.txs === 0)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The API of the validator with the highest block (its nonces are the newest). */
async function highestApi(net: Testnet): Promise<string> {
  const ss = await Promise.all(net.apiUrls.map((u) => status(u).catch(() => null)));
  let best = 0;
  ss.forEach((s, i) => {
    if (s && BigInt(String(s.height)) > BigInt(String(ss[best]?.height ?? 0))) best = i;
  });
  return net.apiUrls[best] as string;
}

/** Sets each account's next nonce from the ledger (after a phase, some txs may not have committed). */
async function syncNonces(net: Testnet, accounts: Account[]): Promise<void> {
  const api = await highestApi(net);
  for (const a of accounts) {
    const got = await fetch(`${api}/v1/accounts/${Buffer.from(a.address).toString('hex')}`)
      .then((r) => r.json() as Promise<{ nonce?: string }>)
      .catch(() => ({ nonce: undefined }));
    if (got.nonce !== undefined) a.nonce = BigInt(got.nonce) + 1n;
  }
}

/** Open loop at `rate` in commit mode; client latencies plus the validators' own over their last 10 s. */
async function latencyPhase(
  net: Testnet,
  accounts: Account[],
  to: Uint8Array,
  rate: number,
  seconds: number,
): Promise<LatencyResult> {
  const drained = await waitDrained(net, DRAIN_TIMEOUT_MS);
  await syncNonces(net, accounts);
  const perAccount = Math.ceil((rate * seconds) / accounts.length) + 1;
  const client = await atRate(net, accounts, new Presigned(accounts, to, perAccount), rate, seconds);
  const ss = await Promise.all(net.apiUrls.map((u) => status(u)));
  const nodeP50 = ss.map((s) => (s.commitLatency as { p50Ms: number } | null)?.p50Ms ?? Number.NaN);
  const nodeP99 = ss.map((s) => (s.commitLatency as { p99Ms: number } | null)?.p99Ms ?? Number.NaN);
  const samples = ss.reduce((n, s) => n + ((s.commitLatency as { count: number } | null)?.count ?? 0), 0);
  // Over the validators that measured anything (one left behind in a view change may not have).
  const median = (xs: number[]): number => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return v.length === 0 ? Number.NaN : (v[Math.floor(v.length / 2)] as number);
  };
  return {
    rateTxPerSec: Math.round(rate),
    drained,
    txs: client.length,
    nodeCommitLatencyMs: { p50: median(nodeP50), p99: median(nodeP99), samples },
    clientCommitLatencyMs: {
      p50: Math.round(quantile(client, 0.5) * 100) / 100,
      p99: Math.round(quantile(client, 0.99) * 100) / 100,
      samples: client.length,
    },
  };
}

export async function measure(
  transport: 'tcp' | 'rdma',
  provider: string | undefined,
  quick: boolean,
  ceilingTxPerSec: number,
): Promise<TransportResult> {
  const accountsN = quick ? 48 : 96;
  // e.g. HYBSTER_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile each validator.
  const nodeArgs = (process.env.HYBSTER_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
  const net = await startTestnet({
    validators: 3,
    transport,
    testnetArgs: ['--accounts', String(accountsN + 1), ...(provider ? ['--provider', provider] : [])],
    env: { HYBSTER_LOG_LEVEL: 'warn', HYBSTER_API_RATE_LIMIT_MAX: '0' },
    nodeArgs,
  });
  try {
    const accounts = loadAccounts(net.dir);
    const to = (accounts.pop() as Account).address;
    // Wait until the network formed (every validator connected and ready).
    for (let i = 0; i < 300; i++) {
      const ss = await Promise.all(net.apiUrls.map((u) => status(u).catch(() => null)));
      if (ss.every((s) => s?.ready === true)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const satSeconds = quick ? 6 : 15;
    const warmSeconds = Math.min(3, satSeconds * 0.3);
    // Enough presigned txs for the whole phase at 75% of the ceiling; past that they are signed live.
    const satPerAccount = Math.ceil((0.75 * ceilingTxPerSec * (warmSeconds + satSeconds)) / accounts.length);
    const sat = await saturate(
      net,
      accounts,
      new Presigned(accounts, to, satPerAccount),
      satSeconds,
      BACKLOG_MAX,
    );
    // Each latency phase first lets the backlog drain, so it starts from an empty pipeline
    // and from nonces no pending tx holds.
    const rate = Math.max(1, sat.txPerSec / 2);
    const half = await latencyPhase(net, accounts, to, rate, quick ? 6 : 12);
    // Low load: a fixed small rate, long enough that the validators' 10 s latency window
    // holds only this phase.
    const low = await latencyPhase(net, accounts, to, LOW_LOAD_TX_PER_SEC, LOW_LOAD_SECONDS);
    const ss = await Promise.all(net.apiUrls.map((u) => status(u)));
    return {
      transport,
      ...(provider ? { provider } : {}),
      saturationTxPerSec: Math.round(sat.txPerSec),
      saturationWindowSec: satSeconds,
      clients: accounts.length,
      backlogMax: BACKLOG_MAX,
      rejectedFull: sat.rejectedFull,
      cpuMsPerTx: sat.cpuMsPerTx,
      cpuCoresUsed: sat.cpuCoresUsed,
      latencyRateTxPerSec: half.rateTxPerSec,
      latencyTxs: half.txs,
      nodeCommitLatencyMs: half.nodeCommitLatencyMs,
      clientCommitLatencyMs: half.clientCommitLatencyMs,
      lowLoad: low,
      // The highest view any validator reached (views start at 0).
      viewChanges: Math.max(...ss.map((x) => Number(x.view ?? 0))),
    };
  } finally {
    // A profiled validator writes its profile on a clean exit only.
    if (nodeArgs.length > 0) await Promise.all(net.validators.map((v) => net.kill(v.index, 'SIGTERM')));
    await net.stop();
  }
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const rate = verifyRate(opts.quick ? 500 : 1500);
  const ceiling = (2 * rate) / 3;
  const results: TransportResult[] = [];
  results.push(await measure('tcp', undefined, opts.quick, ceiling));
  const rdma = rdmaAvailable();
  let rdmaNote: string | undefined;
  if (rdma.ok) {
    // verbs needs an RDMA device (or soft-RoCE); tcp;ofi_rxm runs everywhere.
    const hasVerbs =
      existsSync('/sys/class/infiniband') &&
      (await import('node:fs')).readdirSync('/sys/class/infiniband').length > 0;
    const provider = hasVerbs ? 'verbs;ofi_rxm' : 'tcp;ofi_rxm';
    try {
      results.push(await measure('rdma', provider, opts.quick, ceiling));
    } catch (e) {
      rdmaNote = `rdma (${provider}) failed: ${(e as Error).message.split('\n')[0]}`;
    }
  } else {
    rdmaNote = `rdma skipped: ${rdma.reason}`;
  }
  const out = {
    name: 'network',
    quick: opts.quick,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() },
    verifyPerSecSingleCore: Math.round(rate),
    ceilingTxPerSec: Math.round(ceiling),
    goals: { saturationVsCeilingMin: 0.5, lowLoadP50MsMax: 2 },
    results: results.map((r) => ({
      ...r,
      saturationVsCeiling: Math.round((r.saturationTxPerSec / ceiling) * 1000) / 1000,
      saturationGoalMet: r.saturationTxPerSec >= 0.5 * ceiling,
      latencyGoalMet: r.lowLoad.nodeCommitLatencyMs.p50 < 2,
    })),
    ...(rdmaNote ? { note: rdmaNote } : {}),
  };
  console.log(
    `verify ${Math.round(rate)}/s/core -> ceiling ${Math.round(ceiling)} tx/s (2 cores / 3 validators)`,
  );
  console.log(
    'transport         sat tx/s  vs ceil  cpu ms/tx (v0 v1 v2 | gen)   @rate  node p50/p99 ms  client p50/p99 ms',
  );
  const row = (
    name: string,
    rate: number,
    l: Pick<LatencyResult, 'nodeCommitLatencyMs' | 'clientCommitLatencyMs'>,
  ) =>
    `${String(rate).padStart(5)}  ${`${l.nodeCommitLatencyMs.p50}/${l.nodeCommitLatencyMs.p99}`.padStart(15)}  ${`${l.clientCommitLatencyMs.p50}/${l.clientCommitLatencyMs.p99}`.padStart(17)}  ${name}`;
  for (const r of out.results) {
    const name = r.provider ? `${r.transport} ${r.provider}` : r.transport;
    const cpu = r.cpuMsPerTx ? `${r.cpuMsPerTx.validators.join(' ')} | ${r.cpuMsPerTx.loadGenerator}` : 'n/a';
    console.log(
      `${name.padEnd(17)} ${String(r.saturationTxPerSec).padStart(8)}  ${r.saturationVsCeiling.toFixed(2).padStart(7)}  ${cpu.padStart(27)}   ${row('(50% of saturation)', r.latencyRateTxPerSec, r)}`,
    );
    console.log(`${' '.repeat(67)}${row('(low load)', r.lowLoad.rateTxPerSec, r.lowLoad)}`);
  }
  if (rdmaNote) console.log(rdmaNote);
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'network.json'), `${JSON.stringify(out, null, 2)}\n`);
  return out;
}
