// Fault drills against real validator processes: each starts a network, puts a steady
// load on it, injects one fault, lets it recover, and checks that the network commits
// again, that every validator ends with the same chain, and that no transaction an API
// acknowledged as committed is missing. The verdict is one JSON object with timings.
//
// Faults are real where this machine allows: SIGKILL; network partitions and link
// shaping inside network namespaces (tc netem when the kernel has sch_netem, else tc
// tbf); a data directory on a tiny tmpfs. Where a fault cannot be made for real, the
// drill uses the closest stand-in and says so in `method`.

import { spawnSync } from 'node:child_process';
import { mkdir, open, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH } from '../helpers/testnet.js';
import { qdiscAvailable } from '../netns/harness.js';
import {
  chainIdOf,
  compareChains,
  heightOf,
  leaderOf,
  verifyAcked,
  waitForBlockProposedAfter,
  waitForConvergence,
  waitForHeight,
} from './checks.js';
import { LoadGenerator, sleep } from './load.js';
import { type DrillNet, type NetKind, startNet } from './net.js';

export const DRILL_NAMES = [
  'kill-leader',
  'restart-follower',
  'partition',
  'netem',
  'disk-full',
  'backup-restore',
] as const;
export type DrillName = (typeof DRILL_NAMES)[number];

export interface DrillOptions {
  transport: 'tcp' | 'rdma';
  /** 'auto': namespaces for the network faults when this machine allows them, else loopback. */
  net: NetKind | 'auto';
  validators: number;
  ratePerSec: number;
  concurrency: number;
  /** How long the fault is held (partition, shaping, follower down), ms. */
  faultMs: number;
  /** Which validator the fault hits. */
  target: 'leader' | 'follower';
  /** Upper bound for the whole drill, ms. */
  timeoutMs: number;
  env?: Record<string, string>;
}

export const DEFAULT_DRILL_OPTIONS: DrillOptions = {
  transport: 'tcp',
  net: 'auto',
  validators: 3,
  ratePerSec: 60,
  concurrency: 12,
  faultMs: 3000,
  target: 'leader',
  timeoutMs: 150_000,
};

export interface Verdict {
  drill: DrillName;
  ok: boolean;
  /** How the fault was made, e.g. "SIGKILL" or "tc tbf ... (netem unavailable)". */
  method: string;
  net: NetKind;
  transport: 'tcp' | 'rdma';
  validators: number;
  target: number | null;
  timingsMs: {
    setup: number;
    /** Fault to the first block proposed after it being committed. */
    recovery: number | null;
    /** Restart or heal to the faulted validator reaching the network's height. */
    catchUp: number | null;
    /** Load stopped to all validators on one tip. */
    converge: number | null;
    total: number;
  };
  txs: {
    submitted: number;
    acked: number;
    /** Acknowledged txs a validator reported missing (or at another height). */
    lost: number;
    /** Acknowledged txs a validator did not answer about after retries (neither proven kept nor lost). */
    unverified: number;
    pending: number;
    failed: Record<string, number>;
  };
  height: number;
  checks: { commitsAfterFault: boolean; identicalChains: boolean; noAckedTxLost: boolean; caughtUp: boolean };
  notes: string[];
  error?: string;
}

interface FaultOutcome {
  method: string;
  target: number;
  faultAtMs: number;
  recoveryAtMs: number | null;
  catchUpMs: number | null;
  notes: string[];
  /** Cleanup that must run after the checks and before the network stops (e.g. umount). */
  finally?: () => Promise<void>;
}

interface Ctx {
  net: DrillNet;
  load: LoadGenerator;
  opts: DrillOptions;
  /** Validators the load must not send to right now (paused or partitioned). */
  unreachable: Set<number>;
}

const RECOVERY_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 30_000;

function others(net: DrillNet, i: number): string[] {
  return net.apiUrls.filter((_, j) => j !== i);
}

async function pickTarget(ctx: Ctx): Promise<number> {
  const leader = await leaderOf(ctx.net.apiUrls[0]!);
  return ctx.opts.target === 'leader' ? leader : (leader + 1) % ctx.net.size;
}

async function networkHeight(urls: string[]): Promise<number> {
  const hs = await Promise.all(urls.map(heightOf));
  return Math.max(0, ...hs.map((h) => h ?? 0));
}

/** After a restart or heal: time until `target` reaches the others' height at that moment. */
async function catchUp(ctx: Ctx, target: number, fromMs: number): Promise<number | null> {
  const goal = await networkHeight(others(ctx.net, target));
  const at = await waitForHeight(ctx.net.apiUrls[target]!, goal, CATCH_UP_TIMEOUT_MS);
  return at === null ? null : at - fromMs;
}

async function killAndRestart(ctx: Ctx, target: number, method: string): Promise<FaultOutcome> {
  const faultAtMs = Date.now();
  await ctx.net.kill(target, 'SIGKILL');
  const recoveryAtMs = await waitForBlockProposedAfter(
    others(ctx.net, target),
    faultAtMs,
    RECOVERY_TIMEOUT_MS,
  );
  await sleep(Math.max(0, ctx.opts.faultMs - (Date.now() - faultAtMs)));
  const restartAt = Date.now();
  await ctx.net.restart(target);
  return {
    method,
    target,
    faultAtMs,
    recoveryAtMs,
    catchUpMs: await catchUp(ctx, target, restartAt),
    notes: [],
  };
}

const drills: Record<DrillName, (ctx: Ctx) => Promise<FaultOutcome>> = {
  'kill-leader': async (ctx) => {
    const leader = await leaderOf(ctx.net.apiUrls[0]!);
    return killAndRestart(ctx, leader, 'SIGKILL of the leader under load, then restart');
  },

  'restart-follower': async (ctx) => {
    const leader = await leaderOf(ctx.net.apiUrls[0]!);
    return killAndRestart(ctx, (leader + 1) % ctx.net.size, 'SIGKILL of a follower under load, then restart');
  },

  partition: async (ctx) => {
    const target = await pickTarget(ctx);
    const link = ctx.net.link;
    const method = link
      ? `namespace link down (ip link set hyb-v${target}-h down), held ${ctx.opts.faultMs} ms`
      : `SIGSTOP/SIGCONT of the validator as a partition stand-in (no network namespaces), held ${ctx.opts.faultMs} ms`;
    const faultAtMs = Date.now();
    ctx.unreachable.add(target);
    if (link) link.partition(target);
    else ctx.net.pause(target);
    const recoveryAtMs = await waitForBlockProposedAfter(
      others(ctx.net, target),
      faultAtMs,
      RECOVERY_TIMEOUT_MS,
    );
    await sleep(Math.max(0, ctx.opts.faultMs - (Date.now() - faultAtMs)));
    const healAt = Date.now();
    if (link) link.heal(target);
    else ctx.net.resume(target);
    ctx.unreachable.delete(target);
    return {
      method,
      target,
      faultAtMs,
      recoveryAtMs,
      catchUpMs: await catchUp(ctx, target, healAt),
      notes: [],
    };
  },

  netem: async (ctx) => {
    const target = await pickTarget(ctx);
    const link = ctx.net.link;
    const notes: string[] = [];
    let method: string;
    let apply: () => void;
    let remove: () => void;
    if (link) {
      if (qdiscAvailable('netem', ['delay', '1ms'])) {
        const args = ['netem', 'delay', '40ms', '10ms', 'loss', '5%'];
        method = `tc ${args.join(' ')} on both ends of validator ${target}'s link`;
        apply = () => link.shape(target, args);
      } else {
        // No sch_netem in this kernel: a token bucket with a short queue delays packets by
        // up to `latency` and drops what does not fit, which is delay and loss all the same.
        const args = ['tbf', 'rate', '256kbit', 'burst', '4kb', 'latency', '25ms'];
        method = `tc ${args.join(' ')} on both ends of validator ${target}'s link (netem unavailable: kernel lacks sch_netem)`;
        notes.push('netem unavailable; used tbf rate limiting (queueing delay + tail drop) instead');
        apply = () => link.shape(target, args);
      }
      remove = () => link.unshape(target);
    } else {
      // Without namespaces there is no link to shape: freeze the process in short bursts,
      // which delays everything it sends and receives (the kernel buffers, TCP retransmits).
      method = 'SIGSTOP 120 ms / SIGCONT 180 ms bursts (no network namespaces: stand-in for delay and loss)';
      let on = true;
      const timer = setInterval(() => {
        if (on) ctx.net.pause(target);
        else ctx.net.resume(target);
        on = !on;
      }, 150);
      apply = () => {};
      remove = () => {
        clearInterval(timer);
        ctx.net.resume(target);
      };
    }
    const faultAtMs = Date.now();
    apply();
    const recoveryAtMs = await waitForBlockProposedAfter(ctx.net.apiUrls, faultAtMs, RECOVERY_TIMEOUT_MS);
    await sleep(Math.max(0, ctx.opts.faultMs - (Date.now() - faultAtMs)));
    const acksDuring = ctx.load.ackedSince(faultAtMs);
    notes.push(`${acksDuring} txs acknowledged while the link was impaired`);
    const healAt = Date.now();
    remove();
    return { method, target, faultAtMs, recoveryAtMs, catchUpMs: await catchUp(ctx, target, healAt), notes };
  },

  'backup-restore': async (ctx) => {
    // Online backup of a running follower with the real CLI, then (after the chain has
    // moved on) stop it, restore the snapshot over its data and start it: it must rejoin.
    const leader = await leaderOf(ctx.net.apiUrls[0]!);
    const target = ctx.opts.target === 'leader' ? leader : (leader + 1) % ctx.net.size;
    const home = ctx.net.homes[target]!;
    const file = join(ctx.net.dir, `validator${target}.hybsnap`);
    const backupStart = Date.now();
    hybster(['backup', '--home', home, '--out', file]);
    const backupMs = Date.now() - backupStart;
    const bytes = (await stat(file)).size;
    const heightAtBackup = (await heightOf(ctx.net.apiUrls[target]!)) ?? 0;
    await sleep(ctx.opts.faultMs);
    const faultAtMs = Date.now();
    await ctx.net.kill(target, 'SIGTERM');
    const restoreStart = Date.now();
    hybster(['restore', '--home', home, '--from', file, '--yes']);
    const restoreMs = Date.now() - restoreStart;
    const restartAt = Date.now();
    await ctx.net.restart(target);
    const restoredHeight = (await heightOf(ctx.net.apiUrls[target]!)) ?? 0;
    const recoveryAtMs = await waitForBlockProposedAfter(
      others(ctx.net, target),
      faultAtMs,
      RECOVERY_TIMEOUT_MS,
    );
    return {
      method: `online \`hybster backup\` of validator ${target} under load, SIGTERM, \`hybster restore --yes\`, restart`,
      target,
      faultAtMs,
      recoveryAtMs,
      catchUpMs: await catchUp(ctx, target, restartAt),
      notes: [
        `backup ${backupMs} ms, ${bytes} bytes at about height ${heightAtBackup}; restore ${restoreMs} ms; restarted at height ${restoredHeight}`,
      ],
    };
  },

  'disk-full': async (ctx) => {
    const leader = await leaderOf(ctx.net.apiUrls[0]!);
    const target = ctx.opts.target === 'leader' ? leader : (leader + 1) % ctx.net.size;
    const notes: string[] = [];
    if (process.getuid?.() !== 0)
      throw new Error('disk-full needs root to mount a tmpfs for the data directory');
    const home = ctx.net.homes[target]!;
    const data = join(home, 'data');
    // Move the validator's data onto a small tmpfs the way an operator would: graceful
    // stop (SIGTERM finishes the block being written), mount, copy, start.
    await ctx.net.kill(target, 'SIGTERM');
    await rename(data, `${data}.disk`);
    await mkdir(data);
    run('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'hyb-drill-disk', data]);
    const unmount = async (): Promise<void> => {
      if (ctx.net.isRunning(target)) await ctx.net.kill(target, 'SIGKILL');
      spawnSync('umount', ['-l', data]);
    };
    try {
      run('cp', ['-a', `${data}.disk/.`, data]);
      await rm(`${data}.disk`, { recursive: true, force: true });
      await ctx.net.restart(target);
      if ((await catchUp(ctx, target, Date.now())) === null) {
        throw new Error(
          `validator ${target} did not catch up after its data moved to the tmpfs (before any disk fault)`,
        );
      }
      // Fill the file system to the last byte; the validator keeps writing meanwhile, so
      // append until the kernel says ENOSPC rather than trusting a statfs figure.
      const filler = join(data, 'drill-filler.bin');
      const faultAtMs = Date.now();
      const filled = await fillUntilFull(filler);
      const fsInfo = await statfs(data);
      notes.push(`filler took ${filled} bytes of the ${fsInfo.blocks * fsInfo.bsize}-byte tmpfs`);
      // Watch what the validator does: exits, or stops advancing while the others do.
      let observed = 'kept up (no write failed within the window)';
      const watchUntil = Date.now() + Math.max(ctx.opts.faultMs, 8000);
      let behindSince: number | null = null;
      while (Date.now() < watchUntil) {
        if (!ctx.net.isRunning(target)) {
          observed = 'exited';
          break;
        }
        const [mine, theirs] = await Promise.all([
          heightOf(ctx.net.apiUrls[target]!),
          networkHeight(others(ctx.net, target)),
        ]);
        if (mine !== null && theirs - mine >= 3) behindSince ??= Date.now();
        else behindSince = null;
        if (behindSince !== null && Date.now() - behindSince > 2000) {
          observed = `stalled (${theirs - (mine ?? 0)} blocks behind)`;
          break;
        }
        await sleep(200);
      }
      notes.push(`validator ${target} on a full disk: ${observed}`);
      const recoveryAtMs = await waitForBlockProposedAfter(
        others(ctx.net, target),
        faultAtMs,
        RECOVERY_TIMEOUT_MS,
      );
      // Recover: free the space; restart the validator if it stopped or does not resume by itself.
      await rm(filler, { force: true });
      const recoverAt = Date.now();
      if (!ctx.net.isRunning(target)) {
        notes.push('restarted after freeing space');
        await ctx.net.restart(target);
      } else {
        const goal = await networkHeight(others(ctx.net, target));
        if ((await waitForHeight(ctx.net.apiUrls[target]!, goal, 8000)) === null) {
          notes.push('did not resume by itself within 8 s after space was freed; restarted');
          await ctx.net.restart(target);
        } else notes.push('resumed by itself after space was freed');
      }
      return {
        method: 'data directory on a 32 MiB tmpfs filled until ENOSPC, then freed',
        target,
        faultAtMs,
        recoveryAtMs,
        catchUpMs: await catchUp(ctx, target, recoverAt),
        notes,
        finally: unmount,
      };
    } catch (e) {
      await unmount();
      throw e;
    }
  },
};

/** Appends to `file` until the file system is full; returns the bytes written. */
async function fillUntilFull(file: string): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const fh = await open(file, 'a');
  let written = 0;
  try {
    for (let i = 0; i < 100_000; i++) {
      try {
        const { bytesWritten } = await fh.write(chunk);
        written += bytesWritten;
        if (bytesWritten < chunk.length) break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    await fh.close();
  }
  return written;
}

function hybster(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`hybster ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
}

function chooseNet(name: DrillName, opts: DrillOptions): NetKind {
  if (opts.net !== 'auto') return opts.net;
  if (name !== 'partition' && name !== 'netem') return 'loopback';
  return process.getuid?.() === 0 && process.platform === 'linux' ? 'netns' : 'loopback';
}

export async function runDrill(name: DrillName, partial: Partial<DrillOptions> = {}): Promise<Verdict> {
  const opts: DrillOptions = { ...DEFAULT_DRILL_OPTIONS, ...partial };
  const started = Date.now();
  const kind = chooseNet(name, opts);
  const verdict: Verdict = {
    drill: name,
    ok: false,
    method: 'not started',
    net: kind,
    transport: opts.transport,
    validators: opts.validators,
    target: null,
    timingsMs: { setup: 0, recovery: null, catchUp: null, converge: null, total: 0 },
    txs: { submitted: 0, acked: 0, lost: 0, unverified: 0, pending: 0, failed: {} },
    height: 0,
    checks: { commitsAfterFault: false, identicalChains: false, noAckedTxLost: false, caughtUp: false },
    notes: [],
  };
  let net: DrillNet | null = null;
  let load: LoadGenerator | null = null;
  let outcome: FaultOutcome | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const body = async (): Promise<void> => {
      net = await startNet({
        kind,
        validators: opts.validators,
        transport: opts.transport,
        ...(opts.env ? { env: opts.env } : {}),
      });
      const n: DrillNet = net;
      verdict.timingsMs.setup = Date.now() - started;
      const unreachable = new Set<number>();
      load = new LoadGenerator({
        apiUrls: n.apiUrls,
        chainId: await chainIdOf(n.apiUrls[0]!),
        ratePerSec: opts.ratePerSec,
        concurrency: opts.concurrency,
        isUp: (i) => n.isRunning(i) && !unreachable.has(i),
      });
      const l: LoadGenerator = load;
      l.start();
      await l.waitForAcks(10, 30_000);
      outcome = await drills[name]({ net: n, load: l, opts, unreachable });
      verdict.method = outcome.method;
      verdict.target = outcome.target;
      verdict.notes.push(...outcome.notes);
      verdict.timingsMs.recovery =
        outcome.recoveryAtMs === null ? null : outcome.recoveryAtMs - outcome.faultAtMs;
      verdict.timingsMs.catchUp = outcome.catchUpMs;
      verdict.checks.commitsAfterFault = outcome.recoveryAtMs !== null;
      verdict.checks.caughtUp = outcome.catchUpMs !== null;
      // Some load after recovery, so the recovered validator takes part in new blocks too.
      await l.waitForAcks(10, 20_000).catch((e: Error) => verdict.notes.push(`after recovery: ${e.message}`));
      await l.stop();
      const stopAt = Date.now();
      const conv = await waitForConvergence(n.apiUrls, 30_000);
      verdict.timingsMs.converge = conv.ok ? Date.now() - stopAt : null;
      verdict.height = conv.height;
      if (!conv.ok) verdict.notes.push(`no convergence: heights ${JSON.stringify(conv.heights)}`);
      const cmp = await compareChains(n.apiUrls, conv.height);
      verdict.checks.identicalChains = conv.ok && cmp.identical;
      verdict.notes.push(...cmp.mismatches.slice(0, 5));
      // Every validator must hold every acknowledged tx, the one that took the fault included.
      let lost = 0;
      let unanswered = 0;
      let checked = 0;
      for (let i = 0; i < n.size; i++) {
        if ((await heightOf(n.apiUrls[i]!)) === null) {
          verdict.notes.push(
            `validator ${i} unreachable at the end; its acknowledged txs could not be checked`,
          );
          unanswered = Math.max(unanswered, l.acked.length);
          continue;
        }
        const acks = await verifyAcked(n.apiUrls[i]!, l.acked);
        checked++;
        lost = Math.max(lost, acks.lost);
        unanswered = Math.max(unanswered, acks.unanswered);
        verdict.notes.push(...acks.examples.map((x) => `validator ${i}: ${x}`));
      }
      verdict.txs.lost = lost;
      verdict.txs.unverified = unanswered;
      verdict.checks.noAckedTxLost =
        lost === 0 && unanswered === 0 && checked === n.size && l.acked.length > 0;
    };
    await Promise.race([
      body(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`drill exceeded ${opts.timeoutMs} ms`)), opts.timeoutMs);
      }),
    ]);
    const c = verdict.checks;
    verdict.ok = c.commitsAfterFault && c.identicalChains && c.noAckedTxLost && c.caughtUp;
  } catch (e) {
    verdict.ok = false;
    verdict.error = (e as Error).message.split('\n').slice(0, 12).join('\n');
  } finally {
    clearTimeout(timer);
    const l = load as LoadGenerator | null;
    if (l) {
      await l.stop();
      const s = l.snapshot();
      verdict.txs = {
        ...verdict.txs,
        submitted: s.submitted,
        acked: s.acked,
        pending: s.pending,
        failed: s.failed,
      };
    }
    const nl = net as DrillNet | null;
    if (!verdict.ok && nl) {
      // The faulted validator's last words, for a first diagnosis from the verdict alone.
      const t = (outcome as FaultOutcome | null)?.target;
      for (let i = 0; i < nl.size; i++) {
        if (t !== undefined && i !== t) continue;
        const tail = nl
          .log(i)
          .slice(-6)
          .map((line) => `v${i}: ${line.slice(0, 300)}`);
        verdict.notes.push(...tail);
      }
    }
    const o = outcome as FaultOutcome | null;
    if (o?.finally) await o.finally().catch(() => {});
    const nn = net as DrillNet | null;
    if (nn) await nn.stop().catch(() => {});
    verdict.timingsMs.total = Date.now() - started;
  }
  return verdict;
}
