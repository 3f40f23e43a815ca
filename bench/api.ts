// `npm run bench -- api`: read latency and throughput of GET /v1/blocks/:height and
// GET /v1/txs/:hash on a chain of >= 100k signed transfers while a writer keeps
// appending blocks, at 64 keep-alive connections.
//
// The chain is built by writing blocks straight through the real Executor into a real
// LevelDB store (test/api/fixtures/single-node.ts); the real API server serves it; the
// load comes from a worker thread (bench/_api-load.ts). For each read route: a closed
// loop at 64 connections (saturation req/s and its latency), then an open loop at half
// that rate over the same 64 connections (latency at a sustainable load).

import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiServer } from '../api/server.js';
import { repoRoot } from '../api/static.js';
import { toHex } from '../ledger/codec/binary.js';
import { txHash } from '../ledger/tx.js';
import { startSingleNode } from '../test/api/fixtures/single-node.js';
import type { LoadJob, LoadResult } from './_api-load.js';

const CONNECTIONS = 64;
const P99_GOAL_MS = 10;

/** Runs one load phase in a child process; also estimates this process's CPU time per request. */
function load(job: LoadJob, writerCpuMsPerSec = 0): Promise<LoadResult & { serverCpuMsPerReq: number }> {
  const file = join(dirname(fileURLToPath(import.meta.url)), '_api-load.js');
  const cpu0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    const child = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => {
      const r = m as LoadResult;
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000 - writerCpuMsPerSec * r.seconds;
      const serverCpuMsPerReq = Math.round((Math.max(0, cpuMs) / Math.max(1, r.requests)) * 1000) / 1000;
      resolve({ ...r, serverCpuMsPerReq });
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(job);
  });
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const txsTotal = opts.quick ? 10_000 : 100_000;
  const blockTxs = 100;
  const accounts = 1000;
  const phaseMs = opts.quick ? 2_000 : 8_000;
  const writerBlockEveryMs = 100;

  const node = await startSingleNode({ accounts, balance: 10n ** 12n });
  const server = await createApiServer({ node: node.port, rateLimit: false, explorer: false });
  try {
    // ---- build the chain -------------------------------------------------------------
    const buildStart = performance.now();
    const txHashes: string[] = [];
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < txsTotal; i += blockTxs) {
      const txs: Uint8Array[] = [];
      for (let j = i; j < Math.min(txsTotal, i + blockTxs); j++) {
        const from = j % accounts;
        const to = node.accountKeys[(j + 1) % accounts]!.publicKey;
        const tx = node.signedTx(from, { type: 'transfer', to, amount: 1n });
        txs.push(tx);
        txHashes.push(toHex(txHash(tx)));
      }
      // Pipelined: the executor overlaps verification of block n+1 with the write of n.
      pending.push(node.appendBlock(txs));
      if (pending.length >= 4) await pending.shift();
    }
    await Promise.all(pending);
    const buildSeconds = (performance.now() - buildStart) / 1000;
    const height = Number(node.port.store.latestHeight());
    console.log(`chain: ${txsTotal} txs in ${height} blocks, built in ${buildSeconds.toFixed(1)} s`);

    await server.listen({ host: '127.0.0.1', port: 0 });
    const baseUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;

    // ---- writer: keeps appending signed transfers while reads run ---------------------
    // Clients sign, not the node: the writer's txs are signed up front so the server
    // process only does what a validator does with them (verify, execute, persist).
    const writerRateTxs = 200;
    const writerSecondsMax = 4 * (phaseMs / 1000) + 2 + 2 * (opts.quick ? 1 : 2);
    const writerTxs: Uint8Array[] = [];
    for (let j = 0; j < writerRateTxs * writerSecondsMax; j++) {
      const to = node.accountKeys[(j + 7) % accounts]!.publicKey;
      writerTxs.push(node.signedTx(j % accounts, { type: 'transfer', to, amount: 1n }));
    }
    let writing = true;
    let writtenTxs = 0;
    const writerStart = performance.now();
    const writer = (async () => {
      while (writing && writtenTxs < writerTxs.length) {
        const t0 = performance.now();
        const txs = writerTxs.slice(writtenTxs, writtenTxs + (writerRateTxs * writerBlockEveryMs) / 1000);
        await node.appendBlock(txs);
        writtenTxs += txs.length;
        const wait = writerBlockEveryMs - (performance.now() - t0);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();

    // The writer's own CPU cost, measured alone, so the per-request server cost can be separated.
    const baselineMs = opts.quick ? 1000 : 2000;
    const cpuBase0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, baselineMs));
    const cpuBase = process.cpuUsage(cpuBase0);
    const writerCpuMsPerSec = (cpuBase.user + cpuBase.system) / baselineMs;

    const routes = {
      blockByHeight: Array.from({ length: height }, (_, i) => `/v1/blocks/${i + 1}`),
      txByHash: txHashes.map((h) => `/v1/txs/${h}`),
    };
    type Phase = LoadResult & { serverCpuMsPerReq: number };
    const results: Record<string, { saturation: Phase; halfLoad: Phase & { rate: number } }> = {};
    for (const [name, paths] of Object.entries(routes)) {
      await load({ baseUrl, paths, connections: CONNECTIONS, durationMs: 1000 }); // warm-up
      const saturation = await load(
        { baseUrl, paths, connections: CONNECTIONS, durationMs: phaseMs },
        writerCpuMsPerSec,
      );
      const rate = Math.max(1, Math.round(saturation.reqPerSec / 2));
      const halfLoad = {
        rate,
        ...(await load(
          { baseUrl, paths, connections: CONNECTIONS, durationMs: phaseMs, rate },
          writerCpuMsPerSec,
        )),
      };
      results[name] = { saturation, halfLoad };
    }
    writing = false;
    await writer;
    const writerSeconds = (performance.now() - writerStart) / 1000;

    const json = {
      bench: 'api',
      quick: opts.quick,
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        // Other processes on the machine compete for the same cores; read latencies with this in mind.
        loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
      },
      chain: {
        txs: txsTotal,
        blocks: height,
        blockTxs,
        buildSeconds: Math.round(buildSeconds * 10) / 10,
        finalHeight: Number(node.port.store.latestHeight()),
      },
      connections: CONNECTIONS,
      phaseMs,
      writer: {
        txsPerSecTarget: writerRateTxs,
        txsPerSec: Math.round(writtenTxs / writerSeconds),
        txs: writtenTxs,
        cpuMsPerSec: Math.round(writerCpuMsPerSec),
      },
      results,
      goal: {
        p99MsMax: P99_GOAL_MS,
        note:
          'p99 at half the saturation rate (open loop, 64 connections); saturation p99 is bounded below by 64 / (req/s) (Little). ' +
          'serverCpuMsPerReq: server process CPU per request minus the writer CPU measured alone (a load-independent cost estimate).',
        met: Object.fromEntries(
          Object.entries(results).map(([k, v]) => [
            k,
            { halfLoad: v.halfLoad.p99Ms < P99_GOAL_MS, saturation: v.saturation.p99Ms < P99_GOAL_MS },
          ]),
        ),
      },
    };

    console.log(`\n64 connections, writer appending ${json.writer.txsPerSec} tx/s meanwhile`);
    console.log(
      'route            load          req/s    p50 ms   p99 ms   max ms  errors  bytes/resp  server cpu ms/req',
    );
    for (const [name, r] of Object.entries(results)) {
      for (const [label, x] of [
        ['saturation', r.saturation],
        [`open ${r.halfLoad.rate}/s`, r.halfLoad],
      ] as const) {
        console.log(
          `${name.padEnd(16)} ${label.padEnd(13)} ${String(x.reqPerSec).padStart(6)} ${x.p50Ms.toFixed(2).padStart(8)} ${x.p99Ms
            .toFixed(2)
            .padStart(
              8,
            )} ${x.maxMs.toFixed(1).padStart(8)} ${String(x.errors).padStart(7)} ${String(x.bytesPerResponse).padStart(11)} ${x.serverCpuMsPerReq.toFixed(3).padStart(18)}`,
        );
      }
    }
    const out = join(repoRoot(), 'bench', 'results', 'api.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`\nwrote ${out}`);
    return json;
  } finally {
    await server.close();
    await node.close();
  }
}
