// `npm run bench -- network [--quick]`: a real 3-validator network on this machine
// (separate processes, LevelDB, replica transport), fed signed transfers through the
// REST API. For each transport (TCP, and libfabric with the best provider that runs
// here) it measures
//   saturation  committed tx/s with many closed-loop clients (async submission),
//   latency     commit latency p50/p99 at 50% of that rate (commit-mode submissions,
//               open loop): as the validators measure it (tx enters the mempool of the
//               validator it was sent to -> its block is written there) and as the client
//               sees it (HTTP request -> 200 with the block's commit certificate).
// Goals: saturation >= 50% of the signature-verification ceiling measured in the same
// run (2 cores x single-core Ed25519 verify rate / 3 validators); low-load p50 < 2 ms.
// Writes bench/results/network.json.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, sign, verify } from '../ledger/keys.js';
import { rdmaAvailable } from '../rdma-native/native.js';
import { type Account, loadAccounts, status, submit, transfer } from '../test/helpers/client.js';
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

interface TransportResult {
  transport: string;
  provider?: string;
  saturationTxPerSec: number;
  saturationWindowSec: number;
  clients: number;
  rejectedFull: number;
  latencyRateTxPerSec: number;
  latencyTxs: number;
  nodeCommitLatencyMs: { p50: number; p99: number; samples: number };
  clientCommitLatencyMs: { p50: number; p99: number; samples: number };
  viewChanges: number;
}

/** Closed loop: each account submits its next transfer as soon as the previous one was accepted. */
async function saturate(
  net: Testnet,
  accounts: Account[],
  to: Uint8Array,
  seconds: number,
): Promise<{ txPerSec: number; rejectedFull: number }> {
  let running = true;
  let rejectedFull = 0;
  const loops = accounts.map(async (a, i) => {
    const url = net.apiUrls[i % net.apiUrls.length] as string;
    while (running) {
      const t = transfer(CHAIN_ID, a, to, 1n);
      for (;;) {
        const r = await submit(url, t.hex, 'async').catch(() => null);
        if (r && (r.status === 202 || r.status === 200)) break;
        if (r?.status === 503) rejectedFull++;
        if (!running) return;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  });
  // Warm up (JIT, batches filling), then measure on validator 0's committed counter.
  await new Promise((r) => setTimeout(r, Math.min(3000, seconds * 300)));
  const url0 = net.apiUrls[0] as string;
  const c0 = await committedTotal(url0);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c1 = await committedTotal(url0);
  const dt = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all(loops);
  return { txPerSec: (c1 - c0) / dt, rejectedFull };
}

/** Open loop at `rate` tx/s in commit mode; returns client-observed latencies. */
async function atRate(
  net: Testnet,
  accounts: Account[],
  to: Uint8Array,
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
  for (let k = 0; k < total; k++) {
    const due = start + k * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let idx = k % accounts.length;
    for (let tries = 0; busy.has(idx) && tries < accounts.length; tries++) idx = (idx + 1) % accounts.length;
    if (busy.has(idx)) continue; // every account busy: the system is not keeping up; skip this slot
    busy.add(idx);
    const a = accounts[idx] as Account;
    const url = net.apiUrls[k % net.apiUrls.length] as string;
    const t = transfer(CHAIN_ID, a, to, 1n);
    const t0 = performance.now();
    pending.push(
      submit(url, t.hex, 'commit', 10_000)
        .then((r) => {
          if (r.status === 200) latencies.push(performance.now() - t0);
        })
        .catch(() => {})
        .finally(() => busy.delete(idx)),
    );
  }
  await Promise.all(pending);
  return latencies.sort((x, y) => x - y);
}

async function measure(
  transport: 'tcp' | 'rdma',
  provider: string | undefined,
  quick: boolean,
): Promise<TransportResult> {
  const accountsN = quick ? 48 : 96;
  const net = await startTestnet({
    validators: 3,
    transport,
    testnetArgs: ['--accounts', String(accountsN + 1), ...(provider ? ['--provider', provider] : [])],
    env: { HYBSTER_LOG_LEVEL: 'warn', HYBSTER_API_RATE_LIMIT_MAX: '0' },
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
    const sat = await saturate(net, accounts, to, satSeconds);
    // Let the backlog drain so the latency phase starts from an empty pipeline.
    await new Promise((r) => setTimeout(r, 3000));
    for (const a of accounts) {
      const got = await fetch(`${net.apiUrls[0]}/v1/accounts/${Buffer.from(a.address).toString('hex')}`)
        .then((r) => r.json() as Promise<{ nonce?: string }>)
        .catch(() => ({ nonce: undefined }));
      if (got.nonce !== undefined) a.nonce = BigInt(got.nonce) + 1n;
    }
    const rate = Math.max(1, sat.txPerSec / 2);
    const latSeconds = quick ? 6 : 12;
    const client = await atRate(net, accounts, to, rate, latSeconds);
    // The validators' own measurement over the last 10 s (the latency phase).
    const ss = await Promise.all(net.apiUrls.map((u) => status(u)));
    const nodeP50 = ss.map((s) => (s.commitLatency as { p50Ms: number } | null)?.p50Ms ?? Number.NaN);
    const nodeP99 = ss.map((s) => (s.commitLatency as { p99Ms: number } | null)?.p99Ms ?? Number.NaN);
    const samples = ss.reduce((n, s) => n + ((s.commitLatency as { count: number } | null)?.count ?? 0), 0);
    const median = (xs: number[]): number =>
      [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    return {
      transport,
      ...(provider ? { provider } : {}),
      saturationTxPerSec: Math.round(sat.txPerSec),
      saturationWindowSec: satSeconds,
      clients: accounts.length,
      rejectedFull: sat.rejectedFull,
      latencyRateTxPerSec: Math.round(rate),
      latencyTxs: client.length,
      nodeCommitLatencyMs: { p50: median(nodeP50), p99: median(nodeP99), samples },
      clientCommitLatencyMs: {
        p50: Math.round(quantile(client, 0.5) * 100) / 100,
        p99: Math.round(quantile(client, 0.99) * 100) / 100,
        samples: client.length,
      },
      viewChanges: Number(ss[0]?.view ?? 0),
    };
  } finally {
    await net.stop();
  }
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const rate = verifyRate(opts.quick ? 500 : 1500);
  const ceiling = (2 * rate) / 3;
  const results: TransportResult[] = [];
  results.push(await measure('tcp', undefined, opts.quick));
  const rdma = rdmaAvailable();
  let rdmaNote: string | undefined;
  if (rdma.ok) {
    // verbs needs an RDMA device (or soft-RoCE); tcp;ofi_rxm runs everywhere.
    const hasVerbs =
      existsSync('/sys/class/infiniband') &&
      (await import('node:fs')).readdirSync('/sys/class/infiniband').length > 0;
    const provider = hasVerbs ? 'verbs;ofi_rxm' : 'tcp;ofi_rxm';
    try {
      results.push(await measure('rdma', provider, opts.quick));
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
      latencyGoalMet: r.nodeCommitLatencyMs.p50 < 2,
    })),
    ...(rdmaNote ? { note: rdmaNote } : {}),
  };
  console.log(
    `verify ${Math.round(rate)}/s/core -> ceiling ${Math.round(ceiling)} tx/s (2 cores / 3 validators)`,
  );
  console.log('transport        sat tx/s  vs ceiling  @rate   node p50/p99 ms   client p50/p99 ms');
  for (const r of out.results) {
    const name = r.provider ? `${r.transport} ${r.provider}` : r.transport;
    console.log(
      `${name.padEnd(16)} ${String(r.saturationTxPerSec).padStart(8)}  ${r.saturationVsCeiling.toFixed(2).padStart(10)}  ${String(r.latencyRateTxPerSec).padStart(5)}   ${`${r.nodeCommitLatencyMs.p50}/${r.nodeCommitLatencyMs.p99}`.padStart(15)}   ${`${r.clientCommitLatencyMs.p50}/${r.clientCommitLatencyMs.p99}`.padStart(17)}`,
    );
  }
  if (rdmaNote) console.log(rdmaNote);
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'network.json'), `${JSON.stringify(out, null, 2)}\n`);
  return out;
}
