// `npm run bench -- transport`: node-to-node transport costs, all measured in one run so
// they compare as ratios. For TCP (node/transport/tcp.ts) and for the RDMA transport over
// tcp;ofi_rxm and shm, with each data path (rma: one-sided writes into a ring; msg:
// two-sided sends) and completion mode (event-loop: libuv watches the CQ's wait fd;
// thread: native progress thread; busy-poll: JS polls the CQ while traffic flows): round
// trip median/p99 and the CPU both processes spend per round trip (waiting included, so
// spinning shows), for 64 B, 1 KiB and 64 KiB messages; one-way throughput and CPU time
// per message on both sides. The other node is a real second process (this file, forked
// with --transport-peer).
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createTcpTransport } from '../node/transport/tcp.js';
import type { Transport, TransportConnection } from '../node/transport/types.js';
import { rdmaAvailable } from '../rdma-native/native.js';
import { type CompletionMode, type DataPath, RdmaTransport, rmaSafe } from '../rdma-native/transport.js';
import { writeResult } from './_results.js';

interface Config {
  name: string;
  kind: 'tcp' | 'rdma';
  provider?: 'tcp;ofi_rxm' | 'shm';
  dataPath?: DataPath;
  completion?: CompletionMode;
}

const ALL_SIZES = [64, 1024, 65536] as const;
// BENCH_TRANSPORT_SIZES=64,65536 measures a subset of the sizes (while tuning one thing).
const SIZES = ALL_SIZES.filter((s) => {
  const only = process.env.BENCH_TRANSPORT_SIZES;
  return !only || only.split(',').map(Number).includes(s);
});
const TAG_ECHO = 1;
const TAG_SINK = 2;
const TAG_QUERY = 3;

function configs(): Config[] {
  const out: Config[] = [{ name: 'tcp', kind: 'tcp' }];
  if (!rdmaAvailable().ok) return out;
  for (const provider of ['tcp;ofi_rxm', 'shm'] as const) {
    for (const dataPath of ['rma', 'msg'] as const) {
      for (const completion of ['event-loop', 'thread', 'busy-poll'] as const) {
        // shm has no wait fd: its event-loop mode is the thread (measured as such).
        if (provider === 'shm' && completion === 'event-loop') continue;
        // Over tcp the transport runs msg whatever is asked (rmaSafe): an rma row would be a msg row.
        if (dataPath === 'rma' && !rmaSafe(provider)) continue;
        out.push({
          name: `rdma ${provider} ${dataPath} ${completion}`,
          kind: 'rdma',
          provider,
          dataPath,
          completion,
        });
      }
    }
  }
  return out;
}

function makeTransport(c: Config): Transport {
  if (c.kind === 'tcp') return createTcpTransport({ messageBytesMax: 4 << 20 });
  return new RdmaTransport({ provider: c.provider!, dataPath: c.dataPath!, completion: c.completion! });
}

const listenEndpoint = (c: Config): string =>
  c.kind === 'tcp'
    ? 'tcp://127.0.0.1:0'
    : c.provider === 'shm'
      ? 'rdma+shm://'
      : 'rdma+tcp;ofi_rxm://127.0.0.1:0';

/** The other node: echoes TAG_ECHO messages, counts TAG_SINK ones, answers TAG_QUERY with its count and CPU time. */
async function peerMain(config: Config): Promise<void> {
  const t = makeTransport(config);
  t.onConnection((conn) => {
    let sunk = 0;
    let cpu = process.cpuUsage();
    conn.onMessages((batch) => {
      for (const m of batch) {
        if (m[0] === TAG_ECHO) conn.send(m);
        else if (m[0] === TAG_SINK) sunk++;
        else if (m[0] === TAG_QUERY) {
          const used = process.cpuUsage(cpu);
          const r = Buffer.alloc(17);
          r[0] = TAG_QUERY;
          r.writeDoubleBE(sunk, 1);
          r.writeDoubleBE(used.user + used.system, 9);
          conn.send(r);
          sunk = 0;
          cpu = process.cpuUsage();
        }
      }
    });
  });
  const endpoint = await t.listen(listenEndpoint(config));
  process.send?.({ endpoint });
}

class Client {
  private waiter: ((m: Uint8Array) => void) | undefined;
  private drainWaiter: (() => void) | undefined;
  constructor(readonly conn: TransportConnection) {
    conn.onMessages((batch) => {
      for (const m of batch) this.waiter?.(m);
    });
    conn.onDrain(() => this.drainWaiter?.());
  }
  next(): Promise<Uint8Array> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
  drained(): Promise<void> {
    return new Promise((resolve) => {
      this.drainWaiter = resolve;
    });
  }
}

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** Resets the peer's message count and CPU clock; returns what it counted since the last query. */
async function queryPeer(client: Client): Promise<{ received: number; cpuUs: number }> {
  const reply = client.next();
  client.conn.send(Buffer.from([TAG_QUERY]));
  const r = Buffer.from(await reply);
  return { received: r.readDoubleBE(1), cpuUs: r.readDoubleBE(9) };
}

async function roundTrips(client: Client, size: number, count: number) {
  const m = Buffer.alloc(size, 0x5a);
  m[0] = TAG_ECHO;
  const samples: number[] = [];
  await queryPeer(client);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < count + Math.min(200, count); i++) {
    const t0 = performance.now();
    const reply = client.next();
    client.conn.send(m);
    await reply;
    if (i >= Math.min(200, count)) samples.push((performance.now() - t0) * 1000);
  }
  const cpu = process.cpuUsage(cpu0);
  const peer = await queryPeer(client);
  const trips = count + Math.min(200, count);
  samples.sort((a, b) => a - b);
  return {
    rttUsMedian: quantile(samples, 0.5),
    rttUsP99: quantile(samples, 0.99),
    // CPU both processes spent per round trip, waiting included: what spinning costs.
    cpuUsPerRoundTrip: (cpu.user + cpu.system + peer.cpuUs) / trips,
  };
}

async function oneWay(client: Client, size: number, count: number) {
  const m = Buffer.alloc(size, 0x33);
  m[0] = TAG_SINK;
  await queryPeer(client);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    if (!client.conn.send(m)) await client.drained();
  }
  const { received, cpuUs: peerCpuUs } = await queryPeer(client);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (received !== count) throw new Error(`peer counted ${received} of ${count} messages`);
  return {
    messagesPerSecond: count / seconds,
    mibPerSecond: (count * size) / seconds / 1048576,
    cpuUsPerMessageSender: (cpu.user + cpu.system) / count,
    cpuUsPerMessageReceiver: peerCpuUs / count,
  };
}

async function measure(config: Config, quick: boolean) {
  const self = fileURLToPath(import.meta.url);
  const child = fork(self, ['--transport-peer', JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const t = makeTransport(config);
  try {
    const { endpoint } = await new Promise<{ endpoint: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { endpoint: string }));
      child.once('exit', (code) => reject(new Error(`peer exited (${code})`)));
    });
    const client = new Client(await t.connect(endpoint));
    const results: Record<string, unknown> = {};
    for (const size of SIZES) {
      const rtts = quick ? (size > 4096 ? 100 : 300) : size > 4096 ? 1000 : 3000;
      const bytes = quick ? 16 << 20 : 128 << 20;
      const count = Math.min(quick ? 50_000 : 400_000, Math.max(200, Math.floor(bytes / size)));
      const rtt = await roundTrips(client, size, rtts);
      process.stdout.write(`  ${size} B: RTT median ${rtt.rttUsMedian.toFixed(1)} µs`);
      const throughput = await oneWay(client, size, count);
      process.stdout.write(`, one-way ${throughput.messagesPerSecond.toFixed(0)} msgs/s\n`);
      results[`${size}`] = { ...rtt, ...throughput };
    }
    return results;
  } finally {
    await t.close();
    child.kill('SIGKILL');
  }
}

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const available = rdmaAvailable();
  if (!available.ok) console.warn(`RDMA transport unavailable, measuring TCP only: ${available.reason}`);
  const rows: { config: Config; results: Record<string, Record<string, number>> }[] = [];
  // BENCH_TRANSPORT_ONLY=<substring> measures a subset (e.g. "shm"); TCP always runs, as the baseline.
  const only = process.env.BENCH_TRANSPORT_ONLY;
  for (const config of configs().filter((c) => !only || c.kind === 'tcp' || c.name.includes(only))) {
    process.stdout.write(`measuring ${config.name} ...\n`);
    try {
      rows.push({
        config,
        results: (await measure(config, opts.quick)) as Record<string, Record<string, number>>,
      });
    } catch (e) {
      console.warn(`  ${config.name} failed: ${(e as Error).message}`);
    }
  }
  const tcp = rows.find((r) => r.config.kind === 'tcp');
  const ratio = (r: (typeof rows)[number], size: number, key: string) =>
    (r.results[size]?.[key] ?? Number.NaN) / (tcp?.results[size]?.[key] ?? Number.NaN);

  console.log(
    '\n| transport | size | RTT median µs | RTT p99 µs | RTT vs TCP | CPU µs/RTT (both) | msgs/s one-way | MiB/s | CPU µs/msg (send+recv) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    for (const size of SIZES) {
      const x = r.results[size];
      if (!x) continue;
      console.log(
        `| ${r.config.name} | ${size} | ${fmt(x.rttUsMedian!)} | ${fmt(x.rttUsP99!)} | ${fmt(ratio(r, size, 'rttUsMedian'), 2)} | ${fmt(x.cpuUsPerRoundTrip!, 0)} | ${fmt(x.messagesPerSecond!, 0)} | ${fmt(x.mibPerSecond!)} | ${fmt(x.cpuUsPerMessageSender! + x.cpuUsPerMessageReceiver!, 2)} |`,
      );
    }
  }
  const rdmaRows = rows.filter((r) => r.config.kind === 'rdma');
  const best = rdmaRows.sort(
    (a, b) => (a.results[64]?.rttUsMedian ?? 1e9) - (b.results[64]?.rttUsMedian ?? 1e9),
  )[0];
  const summary = best
    ? {
        bestRdma64B: best.config.name,
        bestRdma64BRttUsMedian: best.results[64]?.rttUsMedian,
        tcp64BRttUsMedian: tcp?.results[64]?.rttUsMedian,
        ratioVsTcp: ratio(best, 64, 'rttUsMedian'),
        goalMet: ratio(best, 64, 'rttUsMedian') <= 0.5,
      }
    : undefined;
  if (summary) {
    console.log(
      `\nbest libfabric configuration for 64 B round trips: ${summary.bestRdma64B}, ${fmt(summary.ratioVsTcp, 2)}x TCP's median (goal <= 0.5)`,
    );
  }
  const out = {
    benchmark: 'transport',
    quick: opts.quick,
    date: new Date().toISOString(),
    rdma: available,
    sizes: SIZES,
    results: rows.map((r) => ({ ...r.config, results: r.results })),
    summary,
  };
  writeResult('transport', out);
  return out;
}

if (process.argv[2] === '--transport-peer' && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  peerMain(JSON.parse(process.argv[3] ?? '{}') as Config).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
