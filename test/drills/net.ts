// The network a drill runs against, whichever way it is built: real validator
// processes on loopback (test/helpers/testnet.ts) or one network namespace per
// validator (test/netns/harness.ts). Drills only use this interface; the `faults`
// member says which network faults this kind of network can inject for real.

import { startTestnet } from '../helpers/testnet.js';
import { netnsAvailability, startNetnsTestnet } from '../netns/harness.js';

export type NetKind = 'loopback' | 'netns';

export interface DrillNet {
  kind: NetKind;
  dir: string;
  apiUrls: string[];
  homes: string[];
  size: number;
  isRunning(i: number): boolean;
  log(i: number): string[];
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped validator again and waits for its API. */
  restart(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT: the process is frozen, its sockets stay open. */
  pause(i: number): void;
  resume(i: number): void;
  /** Present on namespace networks only. */
  link?: {
    partition(i: number): void;
    heal(i: number): void;
    shape(i: number, qdiscArgs: string[]): void;
    unshape(i: number): void;
  };
  stop(): Promise<void>;
}

export interface NetOptions {
  kind: NetKind;
  validators: number;
  transport: 'tcp' | 'rdma';
  env?: Record<string, string>;
}

/** Validators start in seconds, but a loaded 2-core CI machine can take much longer. */
const START_TIMEOUT_MS = 90_000;

export async function startNet(opts: NetOptions): Promise<DrillNet> {
  if (opts.kind === 'netns') {
    const avail = netnsAvailability();
    if (!avail.ok) throw new Error(`network namespaces unavailable: ${avail.reason}`);
    const t = await startNetnsTestnet({
      validators: opts.validators,
      startTimeoutMs: START_TIMEOUT_MS,
      transport: opts.transport,
      ...(opts.env ? { env: opts.env } : {}),
    });
    const signal = (i: number, s: NodeJS.Signals): void => {
      const pid = t.pid(i);
      if (pid !== undefined) process.kill(pid, s);
    };
    return {
      kind: 'netns',
      dir: t.dir,
      apiUrls: t.apiUrls,
      homes: t.homes,
      size: opts.validators,
      isRunning: t.isRunning,
      log: t.log,
      kill: t.kill,
      restart: t.restart,
      pause: (i) => signal(i, 'SIGSTOP'),
      resume: (i) => signal(i, 'SIGCONT'),
      link: { partition: t.partition, heal: t.heal, shape: t.shape, unshape: t.unshape },
      stop: t.stop,
    };
  }
  const t = await startTestnet({
    validators: opts.validators,
    startTimeoutMs: START_TIMEOUT_MS,
    transport: opts.transport,
    ...(opts.env ? { env: opts.env } : {}),
  });
  const v = (i: number) => {
    const x = t.validators[i];
    if (!x) throw new RangeError(`no validator ${i}`);
    return x;
  };
  const signal = (i: number, s: NodeJS.Signals): void => {
    const pid = v(i).process?.pid;
    if (pid !== undefined) process.kill(pid, s);
  };
  return {
    kind: 'loopback',
    dir: t.dir,
    apiUrls: t.apiUrls,
    homes: t.validators.map((x) => x.home),
    size: opts.validators,
    isRunning: (i) => v(i).process !== null,
    log: (i) => v(i).log,
    kill: async (i, s = 'SIGKILL') => {
      if (s === 'SIGKILL') signal(i, 'SIGCONT');
      await t.kill(i, s);
    },
    restart: t.restart,
    pause: (i) => signal(i, 'SIGSTOP'),
    resume: (i) => signal(i, 'SIGCONT'),
    stop: async () => {
      for (let i = 0; i < opts.validators; i++) signal(i, 'SIGCONT');
      await t.stop();
    },
  };
}
