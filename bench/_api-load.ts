// Load generator for bench/api.ts, run as a child process so the client shares neither
// an event loop nor the CPU accounting with the server it measures. Keeps exactly `connections` keep-alive
// sockets. Closed loop: each connection sends its next request when the previous
// answer is in (saturation throughput). Open loop: requests are due at a fixed rate
// and latency counts from when each was due, so queueing is not hidden (no
// coordinated omission).
import { Agent, request } from 'node:http';

export interface LoadJob {
  baseUrl: string;
  paths: string[];
  connections: number;
  durationMs: number;
  /** Requests per second for an open-loop run; absent: closed loop. */
  rate?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  bytesPerResponse: number;
}

const job = await new Promise<LoadJob>((resolve) => process.once('message', (m) => resolve(m as LoadJob)));
const url = new URL(job.baseUrl);
const agent = new Agent({ keepAlive: true, maxSockets: job.connections, maxFreeSockets: job.connections });

function get(path: string): Promise<{ ok: boolean; bytes: number }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        agent,
        method: 'GET',
        headers: { accept: 'application/json' },
      },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ ok: res.statusCode === 200, bytes }));
        res.on('error', () => resolve({ ok: false, bytes }));
      },
    );
    req.on('error', () => resolve({ ok: false, bytes: 0 }));
    req.end();
  });
}

const pick = (): string => job.paths[Math.floor(Math.random() * job.paths.length)]!;

async function run(): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let bytes = 0;
  const started = performance.now();
  const end = started + job.durationMs;
  const record = (t0: number, r: { ok: boolean; bytes: number }) => {
    latencies.push(performance.now() - t0);
    if (!r.ok) errors++;
    bytes += r.bytes;
  };
  if (job.rate === undefined) {
    await Promise.all(
      Array.from({ length: job.connections }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          record(t0, await get(pick()));
        }
      }),
    );
  } else {
    const intervalMs = 1000 / job.rate;
    const inflight = new Set<Promise<void>>();
    let next = started;
    while (next < end) {
      const now = performance.now();
      while (next <= now && next < end) {
        const due = next;
        const p = get(pick()).then((r) => {
          record(due, r);
          inflight.delete(p);
        });
        inflight.add(p);
        next += intervalMs;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inflight);
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds: round(seconds),
    reqPerSec: Math.round(latencies.length / seconds),
    p50Ms: round(q(0.5)),
    p90Ms: round(q(0.9)),
    p99Ms: round(q(0.99)),
    maxMs: round(latencies[latencies.length - 1] ?? 0),
    bytesPerResponse: Math.round(bytes / Math.max(1, latencies.length)),
  };
}

const result = await run();
agent.destroy();
process.send?.(result, () => process.exit(0));
