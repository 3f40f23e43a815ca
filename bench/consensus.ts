// `npm run bench -- consensus [--quick]`: ordering throughput of the Hybster core alone,
// n = 3 replicas in one process with in-memory FIFO message passing, batches of 1, 10,
// 100 and 1000 requests of 256 bytes, P = 1, 2, 4. The ceiling the real network is held
// against. Also measures the TrInX MAC primitive: node:crypto HMAC vs @noble/hashes.
import { createHmac } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { makeConfig } from '../consensus/index.js';
import { LocalCluster } from '../test/sim/cluster.js';
import { writeResult } from './_results.js';
import { median } from './_stats.js';

const REQUEST_BYTES = 256;

interface Row {
  n: number;
  pillars: number;
  requestsPerBatch: number;
  batches: number;
  seconds: number;
  cpuSeconds: number;
  batchesPerSec: number;
  batchesPerCpuSec: number;
  requestsPerSec: number;
  mbPerSec: number;
  messagesPerBatch: number;
}

/** Orders `batches` batches through a fresh cluster; returns seconds until every replica executed all. */
function runOnce(
  pillars: number,
  requestsPerBatch: number,
  batches: number,
): { seconds: number; cpuSeconds: number; messages: number } {
  const config = makeConfig({ n: 3, pillars, window: 128, checkpointInterval: 32, pendingBatchesMax: 64 });
  const c = new LocalCluster(config);
  const payload = new Uint8Array(requestsPerBatch * REQUEST_BYTES);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let proposed = 0;
  while (proposed < batches) {
    // Keep the window full: propose until the core refuses, then let the cluster catch up.
    for (let k = 0; k < 64 && proposed < batches; k++) {
      const batch = payload.slice();
      batch[0] = proposed & 0xff;
      batch[1] = (proposed >> 8) & 0xff;
      const actions = c.step(0, { type: 'propose', batch });
      if (actions.some((a) => a.type === 'proposal-refused')) break;
      proposed++;
    }
    c.drain();
  }
  c.drain();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  for (let v = 0; v < 3; v++) {
    if (c.executed[v]!.length !== batches)
      throw new Error(`replica ${v} executed ${c.executed[v]!.length}/${batches}`);
  }
  return { seconds, cpuSeconds, messages: c.messages };
}

function macBench(iterations: number): { nodeCryptoOpsPerSec: number; nobleOpsPerSec: number } {
  const key = new Uint8Array(32).fill(1);
  const msg = new Uint8Array(32 + 38).fill(2);
  let t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) createHmac('sha256', key).update(msg).digest();
  const nodeSec = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) hmac(sha256, key, msg);
  const nobleSec = Number(process.hrtime.bigint() - t) / 1e9;
  return {
    nodeCryptoOpsPerSec: Math.round(iterations / nodeSec),
    nobleOpsPerSec: Math.round(iterations / nobleSec),
  };
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const reps = opts.quick ? 1 : 3;
  const rows: Row[] = [];
  for (const pillars of [1, 2, 4]) {
    for (const requestsPerBatch of [1, 10, 100, 1000]) {
      const budgetBytes = opts.quick ? 4 << 20 : 48 << 20;
      const batches = Math.max(
        64,
        Math.min(opts.quick ? 400 : 4000, Math.floor(budgetBytes / (requestsPerBatch * REQUEST_BYTES))),
      );
      runOnce(pillars, requestsPerBatch, Math.min(batches, 64)); // warm-up
      const times: number[] = [];
      const cpuTimes: number[] = [];
      let messages = 0;
      for (let r = 0; r < reps; r++) {
        const o = runOnce(pillars, requestsPerBatch, batches);
        times.push(o.seconds);
        cpuTimes.push(o.cpuSeconds);
        messages = o.messages;
      }
      const seconds = median(times);
      const cpuSeconds = median(cpuTimes);
      rows.push({
        n: 3,
        pillars,
        requestsPerBatch,
        batches,
        seconds: Number(seconds.toFixed(4)),
        cpuSeconds: Number(cpuSeconds.toFixed(4)),
        batchesPerSec: Math.round(batches / seconds),
        batchesPerCpuSec: Math.round(batches / cpuSeconds),
        requestsPerSec: Math.round((batches * requestsPerBatch) / seconds),
        mbPerSec: Number(((batches * requestsPerBatch * REQUEST_BYTES) / seconds / 1e6).toFixed(1)),
        messagesPerBatch: Number((messages / batches).toFixed(1)),
      });
    }
  }
  const mac = macBench(opts.quick ? 20_000 : 200_000);
  console.log('n  P  req/batch  batches   batches/s   requests/s    MB/s  msgs/batch  batches/cpu-s');
  for (const r of rows) {
    console.log(
      `${r.n}  ${r.pillars}  ${String(r.requestsPerBatch).padStart(9)}  ${String(r.batches).padStart(7)}  ${String(r.batchesPerSec).padStart(10)}  ${String(r.requestsPerSec).padStart(11)}  ${String(r.mbPerSec).padStart(6)}  ${String(r.messagesPerBatch).padStart(10)}  ${String(r.batchesPerCpuSec).padStart(13)}`,
    );
  }
  console.log(
    `TrInX MAC (HMAC-SHA256, 70 B): node:crypto ${mac.nodeCryptoOpsPerSec}/s, @noble/hashes ${mac.nobleOpsPerSec}/s (x${(mac.nodeCryptoOpsPerSec / mac.nobleOpsPerSec).toFixed(2)})`,
  );
  const result = {
    bench: 'consensus',
    quick: opts.quick,
    note: 'Core alone, one process, in-memory FIFO delivery, all replicas execute every batch; medians of runs; single-threaded (pillars interleaved on one core). Wall-clock rates depend on machine load; batchesPerCpuSec uses the CPU time of this process.',
    node: process.version,
    requestBytes: REQUEST_BYTES,
    rows,
    mac,
  };
  writeResult('consensus', result);
  return result;
}
