// `npm run bench -- api`: read latency and throughput of GET /v1/blocks/:height and
// GET /v1/txs/:hash on a chain of >= 100k signed transfers while a writer keeps
// appending blocks, at 64 keep-alive connections.
//
// The chain is built by writing blocks straight through the real Executor into a real
// LevelDB store (test/api/fixtures/single-node.ts); the real API server serves it; the
// load comes from a child process on the same cores (bench/_api-load.ts). For each read
// route: a cold sweep (one request per block, caches empty), a 1 s warm-up, a closed loop
// at 64 connections (saturation req/s and its latency), then open loops at half that
// rate and at fixed rates over the same 64 connections (latency below saturation). Each
// phase also records what the server process went through (ServerSide), so a missed goal
// shows why. The same loads then run against a floor: a bare node:http server answering a
// body of the same size from memory (bench/_api-floor.ts), so each p99 can be read against
// what this machine gives any server at that load.

import { type ChildProcess, fork, type Serializable } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { GCProfiler } from 'node:v8';
import type { Registry } from 'prom-client';
import { createApiServer } from '../api/server.js';
import { toHex } from '../ledger/codec/binary.js';
import { txHash } from '../ledger/tx.js';
import { startSingleNode } from '../test/api/fixtures/single-node.js';
import type { FloorJob } from './_api-floor.js';
import type { LoadJob, LoadResult } from './_api-load.js';
import { writeResult } from './_results.js';

const CONNECTIONS = 64;
const P99_GOAL_MS = 10;
/** Open-loop rates measured besides half of saturation (req/s). */
const FIXED_RATES = [500, 1000, 2000] as const;

/** What the server process went through during a phase: why a request may have waited. */
export interface ServerSide {
  /** Event-loop delay (perf_hooks, 1 ms resolution): how long a ready request could not run. */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Garbage-collector pauses of the server's main thread (major: mark-compact). */
  gcPauses: number;
  gcMajorPauses: number;
  gcPauseTotalMs: number;
  gcPauseMaxMs: number;
  /**
   * Scavenges (young-generation collections) in the phase, the longest, and what they kept
   * per 1,000 requests: bytes left in the young generation after each (survived: copied,
   * and copied again by the next) and bytes moved into old space (promoted: copied, and
   * marked by every mark-compact from then on). A scavenge's pause grows with both. The
   * writer's share (a validator's own work) is in every phase at about the same bytes/s.
   */
  scavenges: number;
  scavengeMaxMs: number;
  survivedKBPer1kReq: number;
  promotedKBPer1kReq: number;
  /** Times the OS took a core from the server process (all its threads) while it could run. */
  involuntaryContextSwitches: number;
  /**
   * Minor page faults of the server process: pages it touched for the first time, or wrote
   * for the first time since a fork() (copy-on-write; about 24 us each on the shared VM).
   * A steady phase needs few; thousands mean the process is paying for new or shared memory.
   */
  minorPageFaults: number;
  /** Server process CPU per request minus the writer's CPU measured alone. */
  serverCpuMsPerReq: number;
  /**
   * The same for the main thread alone (schedstat; the writer's main-thread CPU measured
   * alone subtracted): what one request costs the thread every request waits for. The rest
   * of serverCpuMsPerReq ran on other threads (GC helpers, LevelDB, libuv). Null where
   * schedstat is unavailable.
   */
  mainThreadCpuMsPerReq: number | null;
  /** Machine load at the end of the phase: runnable threads competing for the 2 cores. */
  loadAverage1m: number;
  /**
   * Linux CPU pressure over the phase (/proc/pressure/cpu "some"): the share of wall time in
   * which at least one runnable task on the machine waited for a core; null where unavailable.
   */
  cpuPressureSome: number | null;
  /** See oldGenerationGrowthKBPerSec. */
  oldGenerationGrowthKBPerSec: number;
  heapUsedMB: number;
  externalMB: number;
  /**
   * In-server handling time from the API's own histogram (api_request_duration_seconds:
   * request parsed to response written), as the bucket bound that holds p50 / p99. It
   * leaves out the time a request waited before the event loop got to it.
   */
  handlingP50MsAtMost: number | null;
  handlingP99MsAtMost: number | null;
  /**
   * Event-loop stalls over STALL_MS seen by a 5 ms ticker on the main thread, with where
   * that thread's time went during each (Linux /proc/thread-self/schedstat): running
   * (our code, GC), waiting for a core while runnable (other processes), or neither
   * (blocked in the kernel). Tells a stall of ours from one the machine imposed; null
   * where schedstat is unavailable.
   */
  stalls: StallSummary | null;
}
type Phase = LoadResult & { server: ServerSide };

interface RouteResult {
  coldSweep: Phase;
  saturation: Phase;
  halfLoad: Phase & { rate: number };
  fixed: (Phase & { rate: number })[];
  /** The same loads against a bare server answering a body of the same size from memory. */
  floor: {
    saturation: LoadResult;
    halfLoad: LoadResult & { rate: number };
    fixed: (LoadResult & { rate: number })[];
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

type Buckets = Map<number, number>;

/** Cumulative bucket counts (le in ms) of the API's request histogram for one route. */
async function handlingBuckets(registry: Registry, route: string): Promise<Buckets> {
  const out: Buckets = new Map();
  const metric = registry.getSingleMetric('api_request_duration_seconds');
  if (metric === undefined) return out;
  for (const v of (await metric.get()).values) {
    const le = v.labels['le'];
    if (
      (v as { metricName?: string }).metricName?.endsWith('_bucket') !== true ||
      v.labels['route'] !== route ||
      le === undefined
    )
      continue;
    const ms = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le) * 1000;
    out.set(ms, (out.get(ms) ?? 0) + v.value);
  }
  return out;
}

/** The smallest bucket bound holding quantile q of the requests counted between two snapshots. */
function bucketQuantile(before: Buckets, after: Buckets, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  if (total <= 0) return null;
  for (const le of bounds) {
    if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return Number.isFinite(le) ? le : null;
  }
  return null;
}

/** Cumulative microseconds in which some task waited for a CPU (Linux PSI), or null. */
function cpuPressureUs(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
/** Env API_BENCH_STALL_LOG=1: each stall and GC pause is logged to stderr as it is seen (for diagnosis). */
const stallLog = process.env['API_BENCH_STALL_LOG'] === '1';
/** Loop stalls longer than this are itemised (ServerSide.stalls). */
const STALL_MS = 15;
const STALL_TICK_MS = 5;

export interface Stall {
  /** Wall time beyond the tick interval. */
  ms: number;
  onCpuMs: number;
  runQueueMs: number;
  blockedMs: number;
  /**
   * What the main thread did in the stall: requests that reached the HTTP server (each
   * handled there), its GC pause time, blocks the writer cut. A stall that handled a
   * connection's worth of requests was the server catching up, not something foreign.
   */
  requests: number;
  gcMs: number;
  writerBlocks: number;
}

/** Counters the bench keeps of the server process's work, read by watchStalls. */
export interface Activity {
  requests: number;
  writerBlocks: number;
}

export interface StallSummary {
  count: number;
  totalMs: number;
  onCpuMs: number;
  runQueueMs: number;
  blockedMs: number;
  /** The longest few. */
  worst: Stall[];
}

/** Main-thread schedstat (on-CPU ns, run-queue wait ns), read through an open fd; null where unavailable. */
function schedReader(): { read(): [number, number]; close(): void } | null {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return null;
  }
  const buf = Buffer.alloc(128);
  return {
    read() {
      const n = readSync(fd, buf, 0, buf.length, 0);
      const [cpu, wait] = buf.toString('latin1', 0, n).split(' ');
      return [Number(cpu) / 1e6, Number(wait) / 1e6];
    },
    close: () => closeSync(fd),
  };
}

/** The main thread's CPU time so far (ms), or null where schedstat is unavailable. */
function mainThreadCpuMs(): number | null {
  const sched = schedReader();
  if (sched === null) return null;
  try {
    return sched.read()[0];
  } finally {
    sched.close();
  }
}

/** Watches the event loop for stalls over STALL_MS until stopped; see ServerSide.stalls. */
function watchStalls(
  activity: Activity,
  gcPauses: readonly { start: number; ms: number }[],
): { stop(): StallSummary | null } {
  const sched = schedReader();
  if (sched === null) return { stop: () => null };
  const read = sched.read;
  const stalls: Stall[] = [];
  const windows: [number, number][] = [];
  let last = performance.now();
  let [cpu0, wait0] = read();
  let requests0 = activity.requests;
  let blocks0 = activity.writerBlocks;
  const log = stallLog;
  const timer = setInterval(() => {
    const now = performance.now();
    const [cpu, wait] = read();
    const ms = now - last - STALL_TICK_MS;
    if (ms > STALL_MS) {
      const onCpuMs = cpu - cpu0;
      const runQueueMs = wait - wait0;
      stalls.push({
        ms: round3(ms),
        onCpuMs: round3(onCpuMs),
        runQueueMs: round3(runQueueMs),
        blockedMs: round3(Math.max(0, now - last - onCpuMs - runQueueMs)),
        requests: activity.requests - requests0,
        gcMs: 0,
        writerBlocks: activity.writerBlocks - blocks0,
      });
      windows.push([last, now]);
      // With the monotonic clock in microseconds that CPU profiles (--cpu-prof) count in.
      if (log) {
        const monoUs = process.hrtime.bigint() / 1000n;
        console.error(
          `stall ${last.toFixed(1)}..${now.toFixed(1)} mono ${monoUs} ${JSON.stringify(stalls.at(-1))}`,
        );
      }
    }
    last = now;
    cpu0 = cpu;
    wait0 = wait;
    requests0 = activity.requests;
    blocks0 = activity.writerBlocks;
  }, STALL_TICK_MS);
  return {
    stop() {
      clearInterval(timer);
      sched.close();
      // GC entries arrive after the fact (the observer is buffered): attributed here.
      stalls.forEach((s, i) => {
        const [a, b] = windows[i]!;
        s.gcMs = round3(gcPauses.filter((g) => g.start >= a && g.start < b).reduce((t, g) => t + g.ms, 0));
      });
      const sum = (f: (s: Stall) => number) => round3(stalls.reduce((a, s) => a + f(s), 0));
      return {
        count: stalls.length,
        totalMs: sum((s) => s.ms),
        onCpuMs: sum((s) => s.onCpuMs),
        runQueueMs: sum((s) => s.runQueueMs),
        blockedMs: sum((s) => s.blockedMs),
        worst: [...stalls].sort((a, b) => b.ms - a.ms).slice(0, 5),
      };
    },
  };
}
const GC_MAJOR = 4; // perf_hooks constants.NODE_PERFORMANCE_GC_MAJOR

/** What GCProfiler reports per collection (its space names are camelCase, unlike @types/node's). */
interface GcStat {
  gcType: string;
  /** Microseconds. */
  cost: number;
  beforeGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
  afterGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
}

/**
 * What the old generation (every space but the young ones) grew by between the phase's
 * collections, per second: promotion plus objects allocated there directly (large objects,
 * code). Mark-compacts come from this growth: its rate, not the scavenges, sets how often
 * the main thread marks the whole heap.
 */
function oldGenerationGrowthKBPerSec(stats: readonly GcStat[], seconds: number): number {
  const young = new Set(['new_space', 'new_large_object_space']);
  const old = (s: GcStat['afterGC']) =>
    s.heapSpaceStatistics.reduce((a, x) => a + (young.has(x.spaceName) ? 0 : x.spaceUsedSize), 0);
  let grown = 0;
  for (let i = 1; i < stats.length; i++) {
    grown += Math.max(0, old(stats[i]!.beforeGC) - old(stats[i - 1]!.afterGC));
  }
  return Math.round(grown / 1024 / Math.max(0.001, seconds));
}

/** Scavenge figures of one phase for ServerSide (see there). */
function scavengeSummary(stats: readonly GcStat[], requests: number) {
  const used = (s: GcStat['afterGC'], space: string) =>
    s.heapSpaceStatistics.find((x) => x.spaceName === space)?.spaceUsedSize ?? 0;
  let scavenges = 0;
  let maxUs = 0;
  let survived = 0;
  let promoted = 0;
  for (const g of stats) {
    if (g.gcType !== 'Scavenge') continue;
    scavenges++;
    maxUs = Math.max(maxUs, g.cost);
    survived += used(g.afterGC, 'new_space');
    promoted += Math.max(0, used(g.afterGC, 'old_space') - used(g.beforeGC, 'old_space'));
  }
  const perK = (bytes: number) => Math.round((bytes / 1024 / Math.max(1, requests / 1000)) * 10) / 10;
  return {
    scavenges,
    scavengeMaxMs: round3(maxUs / 1000),
    survivedKBPer1kReq: perK(survived),
    promotedKBPer1kReq: perK(promoted),
  };
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The writer's presigned txs, packed in one growing buffer instead of one Uint8Array each.
 * Tens of thousands of small typed arrays (an object pair and a backing store each) were
 * bench bookkeeping in the server's old space that every mark-compact of the measured
 * phases had to mark and sweep on top of what a validator holds.
 */
class PackedTxs {
  private bytes = Buffer.allocUnsafeSlow(1 << 20);
  private ends = new Uint32Array(1024);
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(tx: Uint8Array): void {
    const start = this.count === 0 ? 0 : this.ends[this.count - 1]!;
    if (start + tx.length > this.bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.bytes.length, start + tx.length));
      this.bytes.copy(grown, 0, 0, start);
      this.bytes = grown;
    }
    if (this.count === this.ends.length) {
      const grown = new Uint32Array(2 * this.ends.length);
      grown.set(this.ends);
      this.ends = grown;
    }
    this.bytes.set(tx, start);
    this.ends[this.count++] = start + tx.length;
  }

  /** Tx i as a view of the packed bytes. */
  at(i: number): Uint8Array {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`tx ${i} of ${this.count}`);
    return this.bytes.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }
}

/**
 * A child process started once per bench run and before the chain is built.
 *
 * Not one child per phase: fork() write-protects every page of this process, which is the
 * server under test, and the first write to each page afterwards takes a fault (about
 * 24 us a page on the shared VM). The first scavenge after a fork writes pages all over
 * the young generation and frees C++ objects all over the malloc heap (the crypto jobs
 * of the writer's signature checks), so every phase carried one 90-300 ms pause of the
 * server that a validator, which never forks while serving, does not have. Forked while
 * this process is small, the one round of faults is cheap and over before anything is
 * measured.
 */
function startChild(script: string): ChildProcess {
  return fork(join(here, script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Sends `message` to the child and resolves with its next answer that `isAnswer` accepts; rejects if it dies first. */
function ask<T>(child: ChildProcess, message: Serializable, isAnswer: (m: unknown) => m is T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (!isAnswer(m)) return;
      done();
      resolve(m);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`${child.spawnargs.at(-1)} exited with ${code}`));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const done = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
    child.send(message);
  });
}

/**
 * Runs one job on the load generator (bench/_api-load.ts); `onReady` runs once the child
 * has loaded its paths, just before it starts.
 */
async function runLoad(gen: ChildProcess, job: LoadJob, onReady?: () => Promise<void>): Promise<LoadResult> {
  await ask(gen, job, (m): m is 'ready' => m === 'ready');
  await onReady?.();
  return await ask(gen, 'go', (m): m is LoadResult => typeof m === 'object' && m !== null);
}

/** Points the floor server (bench/_api-floor.ts) at a body of `bodyBytes`; its base URL. */
async function floorServing(floor: ChildProcess, bodyBytes: number): Promise<string> {
  const isPort = (m: unknown): m is { port: number } =>
    typeof (m as { port?: unknown } | null)?.port === 'number';
  const { port } = await ask(floor, { bodyBytes } satisfies FloorJob, isPort);
  return `http://127.0.0.1:${port}`;
}

/**
 * Runs one load phase on the load generator while watching this (the server's) process:
 * event-loop delay, GC pauses, CPU per request; with env API_BENCH_PROFILE=<dir>, also a
 * V8 CPU profile of the phase (<dir>/api-<label>.cpuprofile). Watching starts when the
 * child says it is ready (paths loaded), so its preparation is not in the numbers.
 */
async function load(
  gen: ChildProcess,
  job: LoadJob,
  label: string,
  metrics: { registry: Registry; route: string; activity: Activity },
  writerCpuMsPerSec = 0,
  writerMainCpuMsPerSec = 0,
): Promise<Phase> {
  const profileDir = process.env['API_BENCH_PROFILE'];
  const session = profileDir ? new Session() : null;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const gcProfiler = new GCProfiler();
  let gcProfiling = false;
  const gc: { start: number; ms: number; major: boolean }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      gc.push({ start: e.startTime, ms: e.duration, major: kind === GC_MAJOR });
      if (stallLog) console.error(`gc ${e.startTime.toFixed(1)} ${e.duration.toFixed(2)} kind ${kind}`);
    }
  });
  let cpu0 = process.cpuUsage();
  let mainCpu0: number | null = null;
  let usage0 = process.resourceUsage();
  let pressure0 = cpuPressureUs();
  let t0 = performance.now();
  let buckets0: Buckets = new Map();
  let stallWatch: ReturnType<typeof watchStalls> | null = null;
  try {
    const r = await runLoad(gen, job, async () => {
      if (session) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      obs.observe({ entryTypes: ['gc'] });
      gcProfiler.start();
      gcProfiling = true;
      loop.enable();
      cpu0 = process.cpuUsage();
      mainCpu0 = mainThreadCpuMs();
      usage0 = process.resourceUsage();
      pressure0 = cpuPressureUs();
      buckets0 = await handlingBuckets(metrics.registry, metrics.route);
      t0 = performance.now();
      stallWatch = watchStalls(metrics.activity, gc);
    });
    const stalls = (stallWatch as ReturnType<typeof watchStalls> | null)?.stop() ?? null;
    stallWatch = null;
    const gcStats = (gcProfiler.stop()?.statistics ?? []) as unknown as GcStat[];
    gcProfiling = false;
    const cpu = process.cpuUsage(cpu0);
    const usage = process.resourceUsage();
    const pressure1 = cpuPressureUs();
    const wallUs = (performance.now() - t0) * 1000;
    loop.disable();
    const cpuMs = (cpu.user + cpu.system) / 1000 - writerCpuMsPerSec * r.seconds;
    const mainMs =
      mainCpu0 === null ? null : mainThreadCpuMs()! - mainCpu0 - writerMainCpuMsPerSec * r.seconds;
    const ns = (q: number) => round3(loop.percentile(q) / 1e6);
    const mem = process.memoryUsage();
    const buckets1 = await handlingBuckets(metrics.registry, metrics.route);
    return {
      ...r,
      server: {
        loopDelayP50Ms: ns(50),
        loopDelayP99Ms: ns(99),
        loopDelayMaxMs: round3(loop.max / 1e6),
        gcPauses: gc.length,
        gcMajorPauses: gc.filter((g) => g.major).length,
        gcPauseTotalMs: round3(gc.reduce((a, g) => a + g.ms, 0)),
        gcPauseMaxMs: round3(Math.max(0, ...gc.map((g) => g.ms))),
        ...scavengeSummary(gcStats, r.requests),
        oldGenerationGrowthKBPerSec: oldGenerationGrowthKBPerSec(gcStats, r.seconds),
        involuntaryContextSwitches: usage.involuntaryContextSwitches - usage0.involuntaryContextSwitches,
        minorPageFaults: usage.minorPageFault - usage0.minorPageFault,
        serverCpuMsPerReq: round3(Math.max(0, cpuMs) / Math.max(1, r.requests)),
        mainThreadCpuMsPerReq: mainMs === null ? null : round3(Math.max(0, mainMs) / Math.max(1, r.requests)),
        loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
        cpuPressureSome:
          pressure0 === null || pressure1 === null
            ? null
            : Math.round(((pressure1 - pressure0) / wallUs) * 100) / 100,
        heapUsedMB: Math.round(mem.heapUsed / 2 ** 20),
        externalMB: Math.round((mem.external + mem.arrayBuffers) / 2 ** 20),
        handlingP50MsAtMost: bucketQuantile(buckets0, buckets1, 0.5),
        handlingP99MsAtMost: bucketQuantile(buckets0, buckets1, 0.99),
        stalls,
      },
    };
  } finally {
    (stallWatch as ReturnType<typeof watchStalls> | null)?.stop();
    if (gcProfiling) gcProfiler.stop();
    loop.disable();
    obs.disconnect();
    if (session && profileDir) {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(profileDir, { recursive: true });
      writeFileSync(join(profileDir, `api-${label}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    }
  }
}

/**
 * A focused run for chasing one phase (env knobs; none set: the full run): API_BENCH_ROUTES
 * (comma-separated route names), API_BENCH_RATE (req/s of an open loop run instead of
 * saturation, half load, fixed rates and floors), API_BENCH_REPEAT (how many such phases,
 * default 4), API_BENCH_TXS (chain size). It prints one line per phase and writes no JSON.
 */
interface Focus {
  active: boolean;
  routes: string[];
  rate: number;
  repeat: number;
  txs: number | undefined;
}

function focusFromEnv(): Focus {
  const env = process.env;
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${name}=${v}: a positive integer`);
    return n;
  };
  const rate = int('API_BENCH_RATE');
  const routes = (env['API_BENCH_ROUTES'] ?? 'blockByHeight,txByHash').split(',').filter((r) => r !== '');
  for (const r of routes) {
    if (r !== 'blockByHeight' && r !== 'txByHash')
      throw new RangeError(`API_BENCH_ROUTES: unknown route ${r} (blockByHeight, txByHash)`);
  }
  const txs = int('API_BENCH_TXS');
  // A full run's JSON is the goal's record: its chain stays the issue's 100k txs.
  if (txs !== undefined && rate === undefined) throw new RangeError('API_BENCH_TXS needs API_BENCH_RATE');
  return { active: rate !== undefined, routes, rate: rate ?? 0, repeat: int('API_BENCH_REPEAT') ?? 4, txs };
}

function printFocused(route: string, rate: number, p: Phase): void {
  const sv = p.server;
  const st = sv.stalls;
  const worst =
    st?.worst
      .map(
        (w) =>
          `${w.ms.toFixed(0)}(cpu ${w.onCpuMs.toFixed(0)} rq ${w.runQueueMs.toFixed(0)} req ${w.requests} gc ${w.gcMs.toFixed(0)} blk ${w.writerBlocks})`,
      )
      .join(' ') ?? '';
  console.log(
    `${route} open ${rate}/s: ${p.reqPerSec} req/s p50 ${p.p50Ms.toFixed(2)} p99 ${p.p99Ms.toFixed(2)} max ${p.maxMs.toFixed(1)} ms; ` +
      `server cpu ${sv.serverCpuMsPerReq.toFixed(3)} (main ${sv.mainThreadCpuMsPerReq?.toFixed(3)}) ms/req, loop max ${sv.loopDelayMaxMs.toFixed(1)}, gc max ${sv.gcPauseMaxMs.toFixed(1)} ` +
      `(${sv.gcMajorPauses} major), old gen +${sv.oldGenerationGrowthKBPerSec} KB/s, heap ${sv.heapUsedMB} MB ext ${sv.externalMB} MB, load ${sv.loadAverage1m}; ` +
      `stalls ${st?.count ?? 'n/a'}: ${worst}`,
  );
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  // Forked before anything else, while this process is small (see startChild).
  const loadGen = startChild('_api-load.js');
  const floor = startChild('_api-floor.js');
  try {
    return await measure(opts, loadGen, floor);
  } finally {
    loadGen.kill();
    floor.kill();
  }
}

async function measure(
  opts: { quick: boolean },
  loadGen: ChildProcess,
  floor: ChildProcess,
): Promise<unknown> {
  const focus = focusFromEnv();
  const txsTotal = focus.txs ?? (opts.quick ? 10_000 : 100_000);
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
    const activity: Activity = { requests: 0, writerBlocks: 0 };
    server.server.on('request', () => {
      activity.requests++;
    });
    const baseUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;

    // ---- writer: keeps appending signed transfers while reads run ---------------------
    // Clients sign, not the node: the writer's txs are signed up front so the server
    // process only does what a validator does with them (verify, execute, persist).
    const writerRateTxs = 200;
    // Enough for every phase with a generous allowance for the cold sweeps on a slow machine;
    // running out before the last phase ends fails the run (reads must overlap writes).
    // Per route: saturation, half and the fixed rates, each against our server and the floor.
    const timedPhases = focus.active
      ? focus.routes.length * (focus.repeat + 1)
      : 2 * 2 * (2 + FIXED_RATES.length);
    const writerSecondsMax = timedPhases * (phaseMs / 1000) + 2 * 1 + 2 + 60;
    const writerTxs = new PackedTxs();
    for (let j = 0; j < writerRateTxs * writerSecondsMax; j++) {
      const to = node.accountKeys[(j + 7) % accounts]!.publicKey;
      writerTxs.push(node.signedTx(j % accounts, { type: 'transfer', to, amount: 1n }));
    }
    // The node's ingestion path: each tx enters the pending set on its own (checked and
    // signature-verified there, as node/mempool.ts does on POST /v1/txs or gossip), evenly
    // spread; a block is cut from the pending txs every writerBlockEveryMs and executes them
    // without verifying them again (as node/validator.ts does).
    let writing = true;
    let writtenTxs = 0;
    let submitted = 0;
    let rejected = 0;
    const writerStart = performance.now();
    const writer = (async () => {
      const txEveryMs = 1000 / writerRateTxs;
      let txDue = performance.now();
      let blockDue = txDue + writerBlockEveryMs;
      while (writing && submitted < writerTxs.length) {
        const now = performance.now();
        while (txDue <= now && submitted < writerTxs.length) {
          const outcome = await node.port.submitTx(writerTxs.at(submitted++));
          if (outcome.kind === 'rejected') rejected++;
          txDue += txEveryMs;
        }
        if (now >= blockDue) {
          writtenTxs += (await node.produceBlock()).txs.length;
          activity.writerBlocks++;
          blockDue += writerBlockEveryMs;
        }
        const wait = Math.min(txDue, blockDue) - performance.now();
        await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      }
    })();

    // The writer's own CPU cost, measured alone, so the per-request server cost can be separated.
    const baselineMs = opts.quick ? 1000 : 2000;
    const cpuBase0 = process.cpuUsage();
    const mainBase0 = mainThreadCpuMs();
    await new Promise((r) => setTimeout(r, baselineMs));
    const cpuBase = process.cpuUsage(cpuBase0);
    const writerCpuMsPerSec = (cpuBase.user + cpuBase.system) / baselineMs;
    const writerMainCpuMsPerSec =
      mainBase0 === null ? 0 : (mainThreadCpuMs()! - mainBase0) / (baselineMs / 1000);

    // The paths go to the load generator as a file: sending 100k paths over IPC would
    // block this (the server's) event loop for a good part of a second per phase.
    const pathsDir = mkdtempSync(join(tmpdir(), 'api-bench-'));
    const routes: Record<string, string> = {};
    for (const [name, paths] of Object.entries({
      blockByHeight: Array.from({ length: height }, (_, i) => `/v1/blocks/${i + 1}`),
      txByHash: txHashes.map((h) => `/v1/txs/${h}`),
    })) {
      routes[name] = join(pathsDir, `${name}.json`);
      writeFileSync(routes[name], JSON.stringify(paths));
    }
    txHashes.length = 0;
    const results: Record<string, RouteResult> = {};
    const focused: Record<string, Phase[]> = {};
    const routeUrls: Record<string, string> = {
      blockByHeight: '/v1/blocks/:height',
      txByHash: '/v1/txs/:hash',
    };
    for (const [name, pathsFile] of Object.entries(routes)) {
      if (focus.active && !focus.routes.includes(name)) continue;
      const watch = { registry: node.port.metrics, route: routeUrls[name]!, activity };
      const job = (extra: Partial<LoadJob>): LoadJob => ({
        baseUrl,
        pathsFile,
        connections: CONNECTIONS,
        durationMs: phaseMs,
        ...extra,
      });
      const ours = (j: LoadJob, label: string) =>
        load(loadGen, j, `${name}-${label}`, watch, writerCpuMsPerSec, writerMainCpuMsPerSec);
      // Warm-up: one request per block (every block for blockByHeight, one tx of each block
      // for txByHash), so the phases measure the steady state with the read caches filled
      // whatever the machine's speed; then 1 s of the real mix. A cold read costs more (a
      // LevelDB read, a block decode and a render): the sweep's numbers are reported as
      // coldSweep, and a chain beyond the cache bounds would pay that on misses.
      const coldSweep = await load(
        loadGen,
        job({ durationMs: 0, sweepStride: name === 'txByHash' ? blockTxs : 1 }),
        `${name}-sweep`,
        watch,
      );
      await load(loadGen, job({ durationMs: 1000 }), `${name}-warmup`, watch);
      if (focus.active) {
        focused[name] = [];
        for (let i = 0; i < focus.repeat; i++) {
          const startUs = process.hrtime.bigint() / 1000n;
          const p = await ours(job({ rate: focus.rate }), `open-${i}`);
          if (stallLog) {
            console.error(`phase mono ${startUs}..${process.hrtime.bigint() / 1000n}`);
          }
          focused[name].push(p);
          printFocused(name, focus.rate, p);
        }
        continue;
      }
      // Each load runs against our server, then at once against the floor: a bare server
      // answering a body of the same size from memory (bench/_api-floor.ts), so both see
      // about the same machine. The writer keeps appending meanwhile, so the floor shares the
      // cores with the same background work as our server.
      const floorUrl = await floorServing(floor, coldSweep.bytesPerResponse);
      const atFloor = (extra: Partial<LoadJob>) => runLoad(loadGen, job({ ...extra, baseUrl: floorUrl }));
      const saturation = await ours(job({}), 'saturation');
      const floorSaturation = await atFloor({});
      const halfRate = Math.max(1, Math.round(saturation.reqPerSec / 2));
      const halfLoad = { rate: halfRate, ...(await ours(job({ rate: halfRate }), 'half')) };
      const floorHalf = { rate: halfRate, ...(await atFloor({ rate: halfRate })) };
      // Fixed rates as well: on a shared machine the server's share of the cores varies, and
      // half of one moment's saturation can exceed the next moment's capacity.
      const fixed: (Phase & { rate: number })[] = [];
      const floorFixed: (LoadResult & { rate: number })[] = [];
      for (const rate of FIXED_RATES) {
        fixed.push({ rate, ...(await ours(job({ rate }), String(rate))) });
        floorFixed.push({ rate, ...(await atFloor({ rate })) });
      }
      results[name] = {
        coldSweep,
        saturation,
        halfLoad,
        fixed,
        floor: { saturation: floorSaturation, halfLoad: floorHalf, fixed: floorFixed },
      };
    }
    const ranOut = submitted >= writerTxs.length;
    writing = false;
    await writer;
    if (rejected > 0) throw new Error(`the node refused ${rejected} of the writer's txs`);
    if (ranOut) {
      throw new Error(`the writer ran out of its ${writerTxs.length} presigned txs before the reads ended`);
    }
    rmSync(pathsDir, { recursive: true, force: true });
    const writerSeconds = (performance.now() - writerStart) / 1000;
    // A focused run answers one question; bench/results/api.json keeps the full run's figures.
    if (focus.active) return { focus, writerTxsPerSec: Math.round(writtenTxs / writerSeconds), focused };

    /** The goal at each open-loop load: ours, the floor's p99 at the same load, and whether the floor itself meets it. */
    const verdict = (ours: LoadResult, floorAtLoad: LoadResult) => ({
      p99Ms: ours.p99Ms,
      floorP99Ms: floorAtLoad.p99Ms,
      vsFloor: Math.round((ours.p99Ms / Math.max(0.001, floorAtLoad.p99Ms)) * 100) / 100,
      met: ours.p99Ms < P99_GOAL_MS,
      floorMet: floorAtLoad.p99Ms < P99_GOAL_MS,
    });

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
          `Goal checked at each open-loop load (half the saturation rate, and fixed ${FIXED_RATES.join(', ')} req/s; 64 connections; ` +
          'latency counted from when each request was due). Saturation p99 is bounded below by 64 / (req/s) (Little) and is reported, not judged. ' +
          'floor: the same load generator, loads and response size against a bare node:http server in its own process answering ' +
          'from memory, itself reading and writing nothing while the writer keeps running in the bench process (bench/_api-floor.ts): what this machine allows any Node.js server; floorMet false means the ' +
          'machine itself misses the goal at that load. vsFloor: our p99 / the floor p99. ' +
          'coldSweep: closed loop, one request per block with the read caches empty (cold reads), before the measured phases. ' +
          'server.serverCpuMsPerReq: server process CPU per request minus the writer CPU measured alone (a load-independent cost estimate). ' +
          'server.loopDelay*: event-loop delay of the server process during the phase (a request that arrives during a delay waits that long); ' +
          'server.gcPause*: its garbage-collector pauses; server.scavenges, scavengeMaxMs, survivedKBPer1kReq, promotedKBPer1kReq: its young-generation collections and what they kept per 1,000 requests (writer included). ' +
          "clientLoopDelay*: the load generator's own event-loop delay " +
          '(in the open loop a request due while the client could not run is sent late and counted late). ' +
          'server.cpuPressureSome: share of the phase in which some task on the machine waited for a CPU (Linux PSI). ' +
          'queuedMax: open loop, most due requests waiting for a free connection (the server falling behind the rate). ' +
          "server.handlingP*MsAtMost: the API's own request histogram (parsed to answered), as the bucket bound holding that quantile. " +
          'server.mainThreadCpuMsPerReq: the same as serverCpuMsPerReq for the main thread alone (schedstat). ' +
          'server.oldGenerationGrowthKBPerSec: what the old generation grew by between collections (promotion and direct allocation), per second. ' +
          'server.stalls.worst[].requests, gcMs, writerBlocks: requests the HTTP server took in during the stall, GC pause time in it, blocks the writer cut in it.',
        byRoute: Object.fromEntries(
          Object.entries(results).map(([k, v]) => [
            k,
            {
              [`half ${v.halfLoad.rate}/s`]: verdict(v.halfLoad, v.floor.halfLoad),
              ...Object.fromEntries(v.fixed.map((x, i) => [`${x.rate}/s`, verdict(x, v.floor.fixed[i]!)])),
            },
          ]),
        ),
      },
    };

    console.log(`\n64 connections, writer appending ${json.writer.txsPerSec} tx/s meanwhile`);
    console.log(
      'route            load           req/s   p50 ms   p99 ms   max ms  err  bytes/resp  cpu ms/req (client)  loop p99/max ms (client)  gc max ms  promoted KB/1k  load avg  cpu pressure  handled p99 <= ms   floor req/s  floor p99 ms',
    );
    const f = (x: number, w: number, d = 2) => x.toFixed(d).padStart(w);
    for (const [name, r] of Object.entries(results)) {
      const rows: [string, Phase, LoadResult | null][] = [
        ['cold sweep', r.coldSweep, null],
        ['saturation', r.saturation, r.floor.saturation],
        [`open ${r.halfLoad.rate}/s`, r.halfLoad, r.floor.halfLoad],
        ...r.fixed.map((x, i): [string, Phase, LoadResult] => [`open ${x.rate}/s`, x, r.floor.fixed[i]!]),
      ];
      for (const [label, x, fl] of rows) {
        const sv = x.server;
        console.log(
          `${name.padEnd(16)} ${label.padEnd(13)} ${String(x.reqPerSec).padStart(6)} ${f(x.p50Ms, 8)} ${f(x.p99Ms, 8)} ` +
            `${f(x.maxMs, 8, 1)} ${String(x.errors).padStart(4)} ${String(x.bytesPerResponse).padStart(11)} ` +
            `${f(sv.serverCpuMsPerReq, 11, 3)} (${x.clientCpuMsPerReq.toFixed(3)}) ${`${sv.loopDelayP99Ms.toFixed(1)}/${sv.loopDelayMaxMs.toFixed(1)} (${x.clientLoopDelayP99Ms.toFixed(1)}/${x.clientLoopDelayMaxMs.toFixed(1)})`.padStart(25)} ${f(sv.gcPauseMaxMs, 10, 1)} ${f(sv.promotedKBPer1kReq, 15, 1)} ${f(sv.loadAverage1m, 9, 1)} ${(sv.cpuPressureSome === null ? 'n/a' : `${Math.round(sv.cpuPressureSome * 100)}%`).padStart(13)} ${String(sv.handlingP99MsAtMost ?? 'n/a').padStart(17)}` +
            (fl === null ? '' : ` ${String(fl.reqPerSec).padStart(13)} ${f(fl.p99Ms, 13)}`),
        );
      }
    }
    const out = writeResult('api', json);
    console.log(`\nwrote ${out}`);
    return json;
  } finally {
    await server.close();
    await node.close();
  }
}
