// Load generator for bench/api.ts, run as a child process so the client shares neither
// an event loop nor the CPU accounting with the server it measures. Keeps exactly
// `connections` keep-alive sockets, one request in flight on each (no pipelining).
// Closed loop: each connection sends its next request when the previous answer is in
// (saturation throughput). Open loop: requests are due at a fixed rate and latency
// counts from when each was due, so queueing is not hidden (no coordinated omission).
//
// The client is a minimal HTTP/1.1 client over node:net rather than node:http's Agent:
// on the 2 shared cores the load generator competes with the server it measures, and
// node:http's client spent about as much CPU per request as the server did. It still
// speaks real HTTP over real sockets: it writes a full GET request, reads the status
// line and headers, and reads the whole body (Content-Length or chunked) before the
// request counts as answered; a response that does not parse is an error.
//
// One process runs every phase of a bench run, one job at a time: bench/api.ts forks it
// once, before the chain is built, because each fork() of the bench process (the server
// under test) costs that process a page fault per page it writes next and so one long
// garbage-collection pause (see startChild there).
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoadJob {
  baseUrl: string;
  /** A JSON array of request paths; each request picks one at random. */
  pathsFile: string;
  connections: number;
  durationMs: number;
  /** Requests per second for an open-loop run; absent: closed loop. */
  rate?: number;
  /** Closed loop over every `stride`-th path once, in order, instead of random picks for durationMs. */
  sweepStride?: number;
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
  /** This load generator's CPU per request: its share of the cores the server also runs on. */
  clientCpuMsPerReq: number;
  /**
   * This load generator's own event-loop delay: in the open loop a request due while the
   * client itself could not run is sent late, and that wait counts in its latency.
   */
  clientLoopDelayP99Ms: number;
  clientLoopDelayMaxMs: number;
  /**
   * Open loop: the most requests that were due but waiting for one of the connections to
   * be free (all busy: the server was not keeping up); 0 for closed loops.
   */
  queuedMax: number;
}

interface Answer {
  ok: boolean;
  bytes: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const HEADER_BYTES_MAX = 16 * 1024;

/** One keep-alive HTTP/1.1 connection; get() may be called again once the previous one resolved. */
class Connection {
  private socket: Socket | null = null;
  private head: Buffer | null = null;
  /** Body bytes still expected: of the Content-Length, or of the current chunk plus its CRLF. */
  private bodyLeft = 0;
  private chunked = false;
  private chunkBuf = '';
  private lastChunk = false;
  private bodyBytes = 0;
  private status = 0;
  private close = false;
  private pending: ((a: Answer) => void) | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  get(path: string): Promise<Answer> {
    return new Promise((resolve) => {
      this.pending = resolve;
      this.head = Buffer.alloc(0);
      this.bodyBytes = 0;
      const s = this.socket ?? this.open();
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nAccept: application/json\r\n\r\n`);
    });
  }

  /** Closes the connection (the server sees it go, as when a load process used to exit). */
  end(): void {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }

  private open(): Socket {
    const s = connect({ host: this.host, port: this.port, noDelay: true });
    s.on('data', (d: Buffer) => {
      if (this.socket === s) this.onData(d);
    });
    // Only the current socket's failure fails the request in flight (an old one may close late).
    const fail = () => {
      if (this.socket !== s) return;
      this.socket = null;
      this.finish(false);
    };
    s.on('error', fail);
    s.on('close', fail);
    this.socket = s;
    return s;
  }

  private finish(ok: boolean): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    this.head = null;
    if (this.close || !ok) {
      const s = this.socket;
      this.socket = null;
      s?.destroy();
      this.close = false;
    }
    p({ ok: ok && this.status === 200, bytes: this.bodyBytes });
  }

  private onData(d: Buffer): void {
    if (this.pending === null) return; // nothing asked: a stray byte; the next request would misparse
    let rest = d;
    if (this.head !== null) {
      const buf = this.head.length === 0 ? d : Buffer.concat([this.head, d]);
      const end = buf.indexOf(HEADER_END);
      if (end < 0) {
        if (buf.length > HEADER_BYTES_MAX) {
          this.finish(false);
          return;
        }
        this.head = buf;
        return;
      }
      if (!this.parseHead(buf.toString('latin1', 0, end))) {
        this.finish(false);
        return;
      }
      this.head = null;
      rest = buf.subarray(end + 4);
      if (!this.chunked && this.bodyLeft === 0) {
        this.finish(true);
        return;
      }
    }
    if (!this.chunked) {
      this.bodyBytes += rest.length;
      this.bodyLeft -= rest.length;
      if (this.bodyLeft <= 0) this.finish(this.bodyLeft === 0);
      return;
    }
    this.readChunked(rest);
  }

  private parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(`${lines[0]} `);
    if (!m) return false;
    this.status = Number(m[1]);
    this.chunked = false;
    this.bodyLeft = 0;
    this.chunkBuf = '';
    this.lastChunk = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
      if (name === 'content-length') this.bodyLeft = Number(value);
      else if (name === 'transfer-encoding') this.chunked = value.includes('chunked');
      else if (name === 'connection') this.close = value === 'close';
    }
    return Number.isSafeInteger(this.bodyLeft) && this.bodyLeft >= 0;
  }

  /** Chunked framing: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n"; bodyLeft counts data (+2 for its CRLF). */
  private readChunked(d: Buffer): void {
    let i = 0;
    while (i < d.length) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, d.length - i);
        this.bodyLeft -= take;
        i += take;
        continue;
      }
      const nl = d.indexOf(10, i);
      if (nl < 0) {
        this.chunkBuf += d.toString('latin1', i);
        return;
      }
      const line = (this.chunkBuf + d.toString('latin1', i, nl)).trim();
      this.chunkBuf = '';
      i = nl + 1;
      if (line === '') {
        // The empty line after the last chunk ends the message (no trailers from our server).
        if (this.lastChunk) {
          this.finish(true);
          return;
        }
        continue;
      }
      const size = Number.parseInt(line, 16);
      if (!Number.isSafeInteger(size)) {
        this.finish(false);
        return;
      }
      if (size === 0) {
        this.lastChunk = true;
        continue;
      }
      this.bodyBytes += size;
      this.bodyLeft = size + 2;
    }
  }
}

async function run(job: LoadJob, paths: readonly string[]): Promise<LoadResult> {
  const url = new URL(job.baseUrl);
  const port = Number(url.port);
  const pick = (): string => paths[Math.floor(Math.random() * paths.length)]!;
  const conns = Array.from({ length: job.connections }, () => new Connection(url.hostname, port));
  const latencies: number[] = [];
  let errors = 0;
  let bytes = 0;
  let queuedMax = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = started + job.durationMs;
  const record = (t0: number, r: Answer) => {
    latencies.push(performance.now() - t0);
    if (!r.ok) errors++;
    bytes += r.bytes;
  };
  if (job.sweepStride !== undefined) {
    let next = 0;
    await Promise.all(
      conns.map(async (c) => {
        for (let i = next; i < paths.length; i = next) {
          next += job.sweepStride!;
          const t0 = performance.now();
          record(t0, await c.get(paths[i]!));
        }
      }),
    );
  } else if (job.rate === undefined) {
    await Promise.all(
      conns.map(async (c) => {
        while (performance.now() < end) {
          const t0 = performance.now();
          record(t0, await c.get(pick()));
        }
      }),
    );
  } else {
    // Due requests wait for a free connection (at most `connections` in flight, like the
    // Agent's maxSockets); their latency still counts from when they were due.
    const intervalMs = 1000 / job.rate;
    const idle = [...conns];
    const queue: number[] = [];
    let inflight = 0;
    let drained: (() => void) | null = null;
    const dispatch = () => {
      while (idle.length > 0 && queue.length > 0) {
        const due = queue.shift()!;
        const c = idle.pop()!;
        inflight++;
        void c.get(pick()).then((r) => {
          record(due, r);
          inflight--;
          idle.push(c);
          dispatch();
          if (inflight === 0 && queue.length === 0) drained?.();
        });
      }
    };
    let next = started;
    while (next < end) {
      const now = performance.now();
      while (next <= now && next < end) {
        queue.push(next);
        next += intervalMs;
      }
      queuedMax = Math.max(queuedMax, queue.length - idle.length);
      dispatch();
      await new Promise((r) => setTimeout(r, 1));
    }
    if (inflight > 0 || queue.length > 0) await new Promise<void>((r) => (drained = r));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  for (const c of conns) c.end();
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
    clientCpuMsPerReq: round((cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length)),
    clientLoopDelayP99Ms: round(loop.percentile(99) / 1e6),
    clientLoopDelayMaxMs: round(loop.max / 1e6),
    queuedMax,
  };
}

const nextMessage = (): Promise<unknown> => new Promise((resolve) => process.once('message', resolve));

// Protocol with bench/api.ts, once per phase: a LoadJob in, 'ready' out (its paths loaded),
// 'go' in, its LoadResult out. The parent closing the channel ends the process.
process.on('disconnect', () => process.exit(0));
const pathsByFile = new Map<string, string[]>();
for (;;) {
  const job = (await nextMessage()) as LoadJob;
  let paths = pathsByFile.get(job.pathsFile);
  if (paths === undefined) {
    paths = JSON.parse(readFileSync(job.pathsFile, 'utf8')) as string[];
    pathsByFile.set(job.pathsFile, paths);
  }
  process.send?.('ready');
  await nextMessage();
  process.send?.(await run(job, paths));
}
