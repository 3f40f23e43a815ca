// `npm run bench -- pillars [--quick]`: ordering throughput of n = 3 replicas in one
// process with the pillars in the main thread (Replica) vs in worker threads
// (ThreadedReplica, one worker per pillar per replica: 3 * P workers), P = 2 and 4,
// batches of 10 and 100 requests of 256 bytes. The same pipelined driver feeds both.
// Read the ratio with the core count in mind: workers only win when there are cores
// for them, and the main thread still runs three coordinators and all message passing.
import { availableParallelism } from 'node:os';
import { makeConfig } from '../consensus/index.js';
import { PillarCluster, type ReplicaKind } from '../test/node/pillar-cluster.js';
import { writeResult } from './_results.js';
import { median } from './_stats.js';

const REQUEST_BYTES = 256;
/** Proposals per round; the round runs until every replica is quiet. */
const ROUND = 32;

interface Row {
  pillars: number;
  kind: ReplicaKind;
  requestsPerBatch: number;
  batches: number;
  seconds: number;
  cpuSeconds: number;
  batchesPerSec: number;
  requestsPerSec: number;
}

async function runOnce(
  pillars: number,
  kind: ReplicaKind,
  requestsPerBatch: number,
  batches: number,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const config = makeConfig({ n: 3, pillars, window: 128, checkpointInterval: 32, pendingBatchesMax: 64 });
  const c = await PillarCluster.create(config, kind);
  c.tracing = false;
  try {
    const payload = new Uint8Array(requestsPerBatch * REQUEST_BYTES);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    let proposed = 0;
    while (Math.min(...c.delivered.map((d) => d.length)) < batches) {
      for (let k = 0; k < ROUND && proposed < batches; k++) {
        const batch = payload.slice();
        batch[0] = proposed & 0xff;
        batch[1] = (proposed >> 8) & 0xff;
        proposed++;
        await c.stepNow(0, { type: 'propose', batch }, false);
      }
      await c.run(false);
      if (proposed >= batches && Math.min(...c.delivered.map((d) => d.length)) < batches) {
        throw new Error(`only ${c.delivered.map((d) => d.length).join('/')} of ${batches} delivered`);
      }
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await c.close();
  }
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const batches = opts.quick ? 200 : 1000;
  const repeats = opts.quick ? 1 : 3;
  const rows: Row[] = [];
  for (const requestsPerBatch of [10, 100]) {
    for (const pillars of [2, 4]) {
      for (const kind of ['in-thread', 'threaded'] as const) {
        const runs: { seconds: number; cpuSeconds: number }[] = [];
        for (let r = 0; r < repeats; r++) runs.push(await runOnce(pillars, kind, requestsPerBatch, batches));
        const seconds = median(runs.map((x) => x.seconds));
        rows.push({
          pillars,
          kind,
          requestsPerBatch,
          batches,
          seconds,
          cpuSeconds: median(runs.map((x) => x.cpuSeconds)),
          batchesPerSec: batches / seconds,
          requestsPerSec: (batches * requestsPerBatch) / seconds,
        });
      }
    }
  }
  console.log(`cores: ${availableParallelism()}; n = 3 replicas in one process; median of ${repeats}`);
  console.log('req/batch  P  replica      batches/s   req/s      cpu-s   threaded/in-thread');
  for (const r of rows) {
    const base = rows.find(
      (x) => x.kind === 'in-thread' && x.pillars === r.pillars && x.requestsPerBatch === r.requestsPerBatch,
    )!;
    console.log(
      `${String(r.requestsPerBatch).padStart(9)}  ${r.pillars}  ${r.kind.padEnd(10)} ${r.batchesPerSec
        .toFixed(0)
        .padStart(10)} ${r.requestsPerSec.toFixed(0).padStart(9)} ${r.cpuSeconds.toFixed(2).padStart(8)}   ${(
        r.batchesPerSec / base.batchesPerSec
      ).toFixed(2)}`,
    );
  }
  const result = { cores: availableParallelism(), quick: opts.quick, repeats, rows };
  writeResult('pillars', result);
  return result;
}
