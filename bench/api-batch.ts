// `npm run bench -- api-batch`: server CPU per tx of POST /v1/txs/batch, from the socket to
// the mempool and back, with 64 signed transfers per request as bench/network.ts's batched
// phase sends them (hex strings in {"txs": [...]}).
//
// The real API server (api/server.ts, as a node runs it, rate limiting on) listens on
// loopback, over a real LevelDB store (test/api/fixtures/single-node.ts). Behind the route:
// - intake: the real batch intake (node/submit-batch.ts) over a real Mempool, fresh for every
//   round so every tx is accepted. Ed25519 is left out: the mempool's batch verifier answers
//   "valid" for every signature (the txs are validly signed anyway), so this is what intake
//   costs besides verification, the part the batched saturation goal needs shrunk.
// - route: the route alone; the node takes every tx and answers its hash.
// - floor: not the API at all but node:http reading and JSON.parse-ing the same bodies and
//   answering a body of the same size: what any server pays on this machine for this load.
//
// The load comes from a child process (bench/_api-batch-client.ts: 2 keep-alive connections,
// closed loop, like one validator's share of the network benchmark's 6 clients), so the
// number is this process's CPU time (process.cpuUsage: the main thread plus V8's GC helper
// threads; nothing else runs here) divided by the txs. Event-loop busy time per tx is
// reported too.
//
// Old against new: with a baseline build (API_BATCH_BASELINE=<dir>, see below),
// its createApiServer and submitBatch run over the same store, mempool code and
// request bodies, alternated round by round in this one process; medians of the rounds. Make
// the baseline differ only in the modules under test, or the comparison measures duplicated
// modules too (an A/A run of two full builds differed by 3-8%):
//   git archive <old> | tar -x -C /tmp/old && ln -s $PWD/node_modules /tmp/old/ &&
//   npx tsc -p /tmp/old/tsconfig.json --outDir /tmp/old-build &&
//   node dist/bench/_link-baseline.js /tmp/old-build dist /tmp/api-base api/handlers.js node/submit-batch.js
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import type { NodePort, SubmitOutcome } from '../api/node-port.js';
import * as currentServer from '../api/server.js';
import { toHex } from '../ledger/codec/binary.js';
import { encodeTx, signTx, txHashWithHex } from '../ledger/tx.js';
import { Mempool } from '../node/mempool.js';
import * as currentIntake from '../node/submit-batch.js';
import { startSingleNode } from '../test/api/fixtures/single-node.js';
import type { ClientDone, ClientRun } from './_api-batch-client.js';
import { writeResult } from './_results.js';

const TXS_PER_REQUEST = 64;
const CONNECTIONS = 2;
const ACCOUNTS = 256;

type ServerModule = Pick<typeof currentServer, 'createApiServer'>;
type IntakeModule = Pick<typeof currentIntake, 'submitBatch'>;

interface Side {
  name: 'baseline' | 'current';
  server: ServerModule;
  intake: IntakeModule;
}

interface Sample {
  cpuUsPerTx: number;
  /** The kernel's share of cpuUsPerTx (loopback TCP, epoll). */
  systemUsPerTx: number;
  loopBusyUsPerTx: number;
  wallMs: number;
}

export interface SideResult {
  name: string;
  cpuUsPerTxMedian: number;
  cpuUsPerTxMin: number;
  cpuUsPerTxMax: number;
  systemUsPerTxMedian: number;
  loopBusyUsPerTxMedian: number;
  txsPerSecondMedian: number;
  rounds: Sample[];
}

// A full collection before each sample, so one side's garbage is not collected on the other's time.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const round2 = (x: number): number => Math.round(x * 100) / 100;

async function loadBaseline(): Promise<{ dir: string; side: Side } | null> {
  const dir = process.env['API_BATCH_BASELINE'];
  if (dir === undefined) return null;
  const serverJs = join(dir, 'api', 'server.js');
  const intakeJs = join(dir, 'node', 'submit-batch.js');
  if (!existsSync(serverJs) || !existsSync(intakeJs))
    throw new Error(`API_BATCH_BASELINE=${dir} holds no api/server.js and node/submit-batch.js build`);
  const server = (await import(pathToFileURL(serverJs).href)) as ServerModule;
  const intake = (await import(pathToFileURL(intakeJs).href)) as IntakeModule;
  return { dir, side: { name: 'baseline', server, intake } };
}

/** The fixture's port with the validator's batch intake over a real Mempool (fresh per round). */
function intakePort(base: NodePort, intake: IntakeModule): { port: NodePort; reset(): void } {
  const txCountMax = 1_000_000;
  const fresh = () =>
    new Mempool(
      base.chainId,
      { txCountMax, bytesMax: 1 << 30, nonceAheadMax: 1_000_000 },
      () => 0n,
      Date.now,
      // Every signature counts as valid: Ed25519 stays out of the measurement.
      async (checks) => checks.map(() => true),
    );
  let pool = fresh();
  const submitTxs = (encoded: readonly Uint8Array[]): Promise<SubmitOutcome[]> =>
    intake.submitBatch(
      {
        accepting: () => true,
        room: () => txCountMax - pool.size,
        prepare: (tx) => pool.prepare(tx),
        verifyAhead: (txs) => pool.verifyAhead(txs),
        add: (tx) => pool.addPrepared(tx, { verifySignature: true, local: true }),
        committed: async (hash) => {
          const stored = await base.store.getTx(hash);
          return stored && { height: stored.height, index: stored.index, result: stored.result };
        },
        accepted: () => undefined,
      },
      encoded,
    );
  const port: NodePort = {
    ...base,
    submitTxs,
    submitTx: async (e) => (await submitTxs([e]))[0] as SubmitOutcome,
  };
  return {
    port,
    reset: () => {
      pool = fresh();
    },
  };
}

function startClient(): Promise<ChildProcess> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child = fork(join(here, '_api-batch-client.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return Promise.resolve(child);
}

function ask<T>(child: ChildProcess, msg: unknown, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string; message?: string }) => {
      child.off('message', onMessage);
      if (m.type === type) resolve(m as T);
      else reject(new Error(`client: ${m.message ?? m.type}`));
    };
    child.on('message', onMessage);
    child.send(msg as never);
  });
}

/** The route alone: a node that takes every tx, answering with its hash as the mempool computes it (no mempool). */
function takingPort(base: NodePort): NodePort {
  const submitTxs = async (encoded: readonly Uint8Array[]): Promise<SubmitOutcome[]> =>
    encoded.map((e) => ({ kind: 'accepted', hash: txHashWithHex(e).hash }));
  return { ...base, submitTxs, submitTx: async (e) => (await submitTxs([e]))[0] as SubmitOutcome };
}

/** What any server on this machine pays for the same requests: node:http, the body read and parsed, a same-size answer. */
async function startFloor(answer: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      JSON.parse(body);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type PhaseName = 'intake' | 'route';

interface Target {
  phase: PhaseName | 'floor';
  side: 'baseline' | 'current' | 'floor';
  port: number;
  reset(): void;
}

export interface PhaseResult {
  /** What is behind the route in this phase. */
  what: string;
  sides: SideResult[];
  comparison: { cpuRatioMedian: number; cpuUsPerTxSaved: number; roundRatios: number[] } | null;
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const rounds = opts.quick ? 3 : 15;
  const requests = opts.quick ? 20 : 120;
  const txCount = requests * TXS_PER_REQUEST;
  const node = await startSingleNode({ accounts: ACCOUNTS });
  const baseline = await loadBaseline();
  const sides: Side[] = [
    ...(baseline === null ? [] : [baseline.side]),
    { name: 'current', server: currentServer, intake: currentIntake },
  ];
  if (baseline === null) {
    console.log('no baseline build (API_BATCH_BASELINE): measuring the current code only');
  }

  // Distinct senders as far as they go, then their next nonces: a realistic mix for the mempool.
  const bodies: string[] = [];
  for (let r = 0; r < requests; r++) {
    const txs: string[] = [];
    for (let j = 0; j < TXS_PER_REQUEST; j++) {
      const k = r * TXS_PER_REQUEST + j;
      const from = node.accountKeys[k % ACCOUNTS];
      const to = node.accountKeys[(k + 1) % ACCOUNTS];
      if (from === undefined || to === undefined) throw new Error('account out of range');
      const tx = signTx(
        {
          chainId: node.chainId,
          from: from.publicKey,
          nonce: BigInt(Math.floor(k / ACCOUNTS) + 1),
          payload: { type: 'transfer', to: to.publicKey, amount: 1n },
        },
        from.secretKey,
      );
      txs.push(toHex(encodeTx(tx)));
    }
    bodies.push(JSON.stringify({ txs }));
  }
  const floorAnswer = JSON.stringify({
    results: Array.from({ length: TXS_PER_REQUEST }, () => ({ hash: 'ab'.repeat(32), status: 'accepted' })),
  });

  const client = await startClient();
  const apps: FastifyInstance[] = [];
  const floor = await startFloor(floorAnswer);
  try {
    await ask(client, { type: 'bodies', bodies }, 'ready');
    const targets: Target[] = [];
    for (const phase of ['intake', 'route'] as const) {
      for (const side of sides) {
        const { port, reset } =
          phase === 'intake'
            ? intakePort(node.port, side.intake)
            : { port: takingPort(node.port), reset: () => undefined };
        const app = await side.server.createApiServer({
          node: port,
          explorer: false,
          // As a node runs it (the limit is per client IP; the benchmark's one client stays under it).
          rateLimit: { max: 1_000_000, windowMs: 1000 },
        });
        apps.push(app);
        await app.listen({ host: '127.0.0.1', port: 0 });
        targets.push({ phase, side: side.name, port: (app.server.address() as AddressInfo).port, reset });
      }
    }
    targets.push({ phase: 'floor', side: 'floor', port: floor.port, reset: () => undefined });

    const once = async (t: Target): Promise<Sample> => {
      t.reset();
      collect();
      const job: ClientRun = { type: 'run', port: t.port, connections: CONNECTIONS };
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const t0 = performance.now();
      const done = await ask<ClientDone>(client, job, 'done');
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      if (done.statuses['200'] !== requests || (t.side !== 'floor' && done.items['accepted'] !== txCount)) {
        throw new Error(`${t.phase}/${t.side}: not every tx was accepted: ${JSON.stringify(done)}`);
      }
      return {
        cpuUsPerTx: (cpu.user + cpu.system) / txCount,
        systemUsPerTx: cpu.system / txCount,
        loopBusyUsPerTx: (elu.active * 1000) / txCount,
        wallMs,
      };
    };

    // Warm-up: JIT and caches of every target, not counted.
    for (const t of targets) await once(t);
    const key = (t: Target) => `${t.phase}/${t.side}`;
    const samples = new Map<string, Sample[]>(targets.map((t) => [key(t), []]));
    const ratios = new Map<PhaseName, number[]>([
      ['intake', []],
      ['route', []],
    ]);
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first, so drift in machine load falls on both sides alike.
      const order = r % 2 === 0 ? targets : [...targets].reverse();
      const got = new Map<string, Sample>();
      for (const t of order) got.set(key(t), await once(t));
      for (const [k, sample] of got) samples.get(k)?.push(sample);
      for (const phase of ['intake', 'route'] as const) {
        const b = got.get(`${phase}/baseline`);
        const c = got.get(`${phase}/current`);
        if (b !== undefined && c !== undefined) ratios.get(phase)?.push(c.cpuUsPerTx / b.cpuUsPerTx);
      }
    }

    const sideResult = (k: string, name: string): SideResult => {
      const xs = samples.get(k) ?? [];
      const cpu = xs.map((x) => x.cpuUsPerTx);
      return {
        name,
        cpuUsPerTxMedian: round2(median(cpu)),
        cpuUsPerTxMin: round2(Math.min(...cpu)),
        cpuUsPerTxMax: round2(Math.max(...cpu)),
        systemUsPerTxMedian: round2(median(xs.map((x) => x.systemUsPerTx))),
        loopBusyUsPerTxMedian: round2(median(xs.map((x) => x.loopBusyUsPerTx))),
        txsPerSecondMedian: Math.round(median(xs.map((x) => (txCount * 1000) / x.wallMs))),
        rounds: xs.map((x) => ({
          cpuUsPerTx: round2(x.cpuUsPerTx),
          systemUsPerTx: round2(x.systemUsPerTx),
          loopBusyUsPerTx: round2(x.loopBusyUsPerTx),
          wallMs: Math.round(x.wallMs),
        })),
      };
    };
    const what: Record<PhaseName, string> = {
      intake: 'route + node/submit-batch + a real Mempool (signature verification stubbed out)',
      route: 'route alone: the node takes every tx, answering its hash',
    };
    const phases: Record<string, PhaseResult> = {};
    for (const phase of ['intake', 'route'] as const) {
      const results = sides.map((s) => sideResult(`${phase}/${s.name}`, s.name));
      const base = results.find((x) => x.name === 'baseline');
      const cur = results.find((x) => x.name === 'current');
      const rs = ratios.get(phase) ?? [];
      phases[phase] = {
        what: what[phase],
        sides: results,
        comparison:
          base === undefined || cur === undefined
            ? null
            : {
                cpuRatioMedian: Math.round(median(rs) * 1000) / 1000,
                cpuUsPerTxSaved: round2(base.cpuUsPerTxMedian - cur.cpuUsPerTxMedian),
                roundRatios: rs.map((x) => Math.round(x * 1000) / 1000),
              },
      };
    }
    const floorResult = sideResult('floor/floor', 'floor');

    console.log(
      `POST /v1/txs/batch, ${TXS_PER_REQUEST} txs per request, ${requests} requests per round, ` +
        `${rounds} rounds, ${CONNECTIONS} connections; server process CPU per tx, Ed25519 left out`,
    );
    console.log(
      'phase   side      cpu us/tx (median [min..max])   of it system   loop busy us/tx   txs/s (wall)',
    );
    const row = (phase: string, r: SideResult) =>
      console.log(
        `${phase.padEnd(7)} ${r.name.padEnd(9)} ` +
          `${`${r.cpuUsPerTxMedian} [${r.cpuUsPerTxMin}..${r.cpuUsPerTxMax}]`.padEnd(31)} ` +
          `${String(r.systemUsPerTxMedian).padEnd(14)} ${String(r.loopBusyUsPerTxMedian).padEnd(17)} ` +
          `${r.txsPerSecondMedian}`,
      );
    for (const [phase, p] of Object.entries(phases)) for (const r of p.sides) row(phase, r);
    row('floor', floorResult);
    for (const [phase, p] of Object.entries(phases)) {
      if (p.comparison === null) continue;
      console.log(
        `${phase}: current/baseline CPU per tx ${p.comparison.cpuRatioMedian} (median of per-round ratios), ` +
          `saved ${p.comparison.cpuUsPerTxSaved} us/tx`,
      );
    }
    console.log('floor: node:http reading and JSON.parse-ing the same bodies, answering a same-size body');
    const out = {
      bench: 'api-batch',
      quick: opts.quick,
      txsPerRequest: TXS_PER_REQUEST,
      requestsPerRound: requests,
      rounds,
      connections: CONNECTIONS,
      baselineDir: baseline?.dir ?? null,
      measured: 'process CPU (user+system) of the server process per tx; Ed25519 stubbed out',
      phases,
      floor: floorResult,
    };
    writeResult('api-batch', out);
    return out;
  } finally {
    for (const app of apps) await app.close();
    await floor.close();
    client.kill();
    await node.close();
  }
}
