// The load side of bench/api-batch.ts, in its own process so that its CPU is not counted as
// the server's: it is handed the request bodies once, then for each run posts them to
// POST /v1/txs/batch closed-loop over a few keep-alive connections and reports what the
// server answered (per-item statuses, so the benchmark can check every tx was accepted).
import { Agent, request } from 'node:http';

export interface ClientBodies {
  type: 'bodies';
  bodies: string[];
}
export interface ClientRun {
  type: 'run';
  port: number;
  connections: number;
}
export interface ClientDone {
  type: 'done';
  /** HTTP status -> responses. */
  statuses: Record<string, number>;
  /** Item status or error code -> items. */
  items: Record<string, number>;
}

let bodies: string[] = [];

function post(agent: Agent, port: number, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/txs/batch',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runAll(job: ClientRun): Promise<ClientDone> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.connections });
  const done: ClientDone = { type: 'done', statuses: {}, items: {} };
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] as string;
      const r = await post(agent, job.port, body);
      done.statuses[r.status] = (done.statuses[r.status] ?? 0) + 1;
      const parsed = JSON.parse(r.text) as { results?: { status?: string; error?: { code: string } }[] };
      for (const item of parsed.results ?? []) {
        const k = item.error?.code ?? item.status ?? '?';
        done.items[k] = (done.items[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: job.connections }, loop));
  agent.destroy();
  return done;
}

process.on('message', (m: ClientBodies | ClientRun) => {
  if (m.type === 'bodies') {
    bodies = m.bodies;
    process.send?.({ type: 'ready' });
    return;
  }
  runAll(m).then(
    (d) => process.send?.(d),
    (e: unknown) => process.send?.({ type: 'error', message: String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
