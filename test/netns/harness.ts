// A validator testnet across network namespaces, for integration tests and drills:
// scripts/netns-testnet.sh builds the topology (one namespace and address per validator,
// a bridge in a hub namespace); this module generates the network with the real CLI,
// re-addresses it (node/ops/retarget), starts each validator inside its namespace, and
// reaches each API through a Unix-socket relay (see unix-forward.ts), so the root
// namespace keeps no 10.213.x addresses. Everything it creates it removes in stop(), and
// on process exit as a last resort.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { retargetTestnet } from '../../node/ops/retarget.js';

const here = dirname(fileURLToPath(import.meta.url));
/** <build>/test/netns/harness.js -> <build>/node/cli.js */
export const CLI_PATH = join(here, '..', '..', 'node', 'cli.js');
const FORWARD_PATH = join(here, 'unix-forward.js');

/** The repository root: the first ancestor of this file holding package.json. */
export function repoRoot(): string {
  let dir = here;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${here}`);
    dir = up;
  }
  return dir;
}

export const SCRIPT_PATH = (): string => join(repoRoot(), 'scripts', 'netns-testnet.sh');

export const API_PORT = 7000;
export const TRANSPORT_PORT = 9000;
export const P2P_PORT = 8000;
export const addrOf = (i: number): string => `10.213.0.${10 + i}`;
export const nsOf = (i: number): string => `hyb-v${i}`;

export type Availability = { ok: true } | { ok: false; reason: string };

/** Whether this machine can run namespaces (root, iproute2, netns and veth creation). */
export function netnsAvailability(): Availability {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  const r = spawnSync('bash', [SCRIPT_PATH(), 'check'], { encoding: 'utf8' });
  if (r.status === 0) return { ok: true };
  return { ok: false, reason: (r.stderr || r.stdout || `exit ${r.status}`).trim() };
}

/** Whether `tc qdisc ... <kind>` works in a namespace here (netem needs the sch_netem module). */
export function qdiscAvailable(kind: string, args: string[]): boolean {
  const ns = `hyb-qprobe-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return false;
  try {
    spawnSync('ip', ['-n', ns, 'link', 'add', 'q0', 'type', 'dummy']);
    const r = spawnSync('ip', [
      'netns',
      'exec',
      ns,
      'tc',
      'qdisc',
      'add',
      'dev',
      'q0',
      'root',
      kind,
      ...args,
    ]);
    return r.status === 0;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function script(...args: string[]): void {
  const r = spawnSync('bash', [SCRIPT_PATH(), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`netns-testnet.sh ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
}

export interface NetnsTestnetOptions {
  validators: number;
  transport?: 'tcp' | 'rdma';
  dir?: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  echoLogs?: boolean;
}

interface Member {
  index: number;
  home: string;
  socketPath: string;
  apiUrl: string;
  process: ChildProcess | null;
  forwarder: ChildProcess | null;
  relay: Server | null;
  log: string[];
}

export interface NetnsTestnet {
  dir: string;
  apiUrls: string[];
  homes: string[];
  addresses: string[];
  isRunning(i: number): boolean;
  pid(i: number): number | undefined;
  log(i: number): string[];
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  restart(i: number): Promise<void>;
  waitReady(i: number, timeoutMs?: number): Promise<void>;
  /** Takes validator i's link to the bridge down (a real partition: packets go nowhere). */
  partition(i: number): void;
  heal(i: number): void;
  /** `tc qdisc replace ... root <args>` on both ends of validator i's link. */
  shape(i: number, args: string[]): void;
  unshape(i: number): void;
  stop(): Promise<void>;
}

const LOG_LINES_MAX = 400;
const live = new Set<() => void>();
process.once('exit', () => {
  for (const cleanup of live) cleanup();
});

function runCli(args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`hybster ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

export async function startNetnsTestnet(opts: NetnsTestnetOptions): Promise<NetnsTestnet> {
  if (!existsSync(CLI_PATH)) throw new Error(`validator CLI not built at ${CLI_PATH}`);
  const n = opts.validators;
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'hyb-netns-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HYBSTER_LOG_FORMAT: 'json', ...opts.env };
  const echo = opts.echoLogs ?? process.env.HYBSTER_TEST_LOGS === '1';
  // A previous run that was killed may have left namespaces behind.
  script('net-down');
  script('net-up', String(n));
  const emergency = (): void => {
    for (const m of members) {
      m.process?.kill('SIGKILL');
      m.forwarder?.kill('SIGKILL');
    }
    spawnSync('bash', [SCRIPT_PATH(), 'net-down']);
  };
  const members: Member[] = [];
  live.add(emergency);

  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => killMember(m, 'SIGKILL')));
    for (const m of members) {
      m.forwarder?.kill('SIGTERM');
      m.relay?.close();
    }
    await Promise.all(
      members.map((m) =>
        m.forwarder && m.forwarder.exitCode === null && m.forwarder.signalCode === null
          ? once(m.forwarder, 'exit')
          : null,
      ),
    );
    script('net-down');
    live.delete(emergency);
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    if (!existsSync(join(dir, 'validator0', 'config.json'))) {
      runCli(
        ['testnet', '--validators', String(n), '--out', dir, '--transport', opts.transport ?? 'tcp'],
        env,
      );
      await retargetTestnet({
        dir,
        hosts: Array.from({ length: n }, (_, i) => addrOf(i)),
        transportPort: TRANSPORT_PORT,
        p2pPort: P2P_PORT,
        apiPort: API_PORT,
        apiHost: '127.0.0.1',
      });
    }
    for (let i = 0; i < n; i++) {
      const m: Member = {
        index: i,
        home: join(dir, `validator${i}`),
        socketPath: join(dir, `api-${i}.sock`),
        apiUrl: '',
        process: null,
        forwarder: null,
        relay: null,
        log: [],
      };
      members.push(m);
      await startRelay(m);
    }
    for (const m of members) launch(m);
    await Promise.all(members.map((m) => waitReady(m.index)));
  } catch (e) {
    await stop();
    throw e;
  }

  async function startRelay(m: Member): Promise<void> {
    const fwd = spawn(
      'ip',
      [
        'netns',
        'exec',
        nsOf(m.index),
        process.execPath,
        FORWARD_PATH,
        m.socketPath,
        '127.0.0.1',
        String(API_PORT),
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    m.forwarder = fwd;
    const [first] = (await once(fwd.stdout!, 'data')) as [Buffer];
    if (!first.toString().includes('listening')) throw new Error(`relay ${m.index} did not start`);
    const relay = createServer((inbound) => {
      const outbound = connect({ path: m.socketPath });
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      const close = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close);
      outbound.on('error', close);
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    const addr = relay.address();
    if (addr === null || typeof addr === 'string') throw new Error('relay has no port');
    m.relay = relay;
    m.apiUrl = `http://127.0.0.1:${addr.port}`;
  }

  function launch(m: Member): void {
    const p = spawn(
      'ip',
      ['netns', 'exec', nsOf(m.index), process.execPath, CLI_PATH, 'start', '--home', m.home],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const onData = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) {
        if (line.length === 0) continue;
        m.log.push(line);
        if (m.log.length > LOG_LINES_MAX) m.log.shift();
        if (echo) process.stderr.write(`[ns v${m.index}] ${line}\n`);
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.once('exit', () => {
      if (m.process === p) m.process = null;
    });
    m.process = p;
  }

  async function killMember(m: Member, signal: NodeJS.Signals): Promise<void> {
    const p = m.process;
    if (!p) return;
    const exited = once(p, 'exit');
    if (signal === 'SIGKILL') p.kill('SIGCONT'); // a paused process must not stay paused
    p.kill(signal);
    await exited;
    m.process = null;
  }

  async function waitReady(i: number, timeoutMs = opts.startTimeoutMs ?? 30_000): Promise<void> {
    const m = members[i];
    if (!m) throw new RangeError(`no validator ${i}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (m.process === null)
        throw new Error(`validator ${i} exited during startup:\n${m.log.slice(-40).join('\n')}`);
      try {
        const res = await fetch(`${m.apiUrl}/v1/status`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline)
        throw new Error(`validator ${i} API not up after ${timeoutMs} ms:\n${m.log.slice(-40).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const member = (i: number): Member => {
    const m = members[i];
    if (!m) throw new RangeError(`no validator ${i}`);
    return m;
  };

  return {
    dir,
    apiUrls: members.map((m) => m.apiUrl),
    homes: members.map((m) => m.home),
    addresses: members.map((m) => addrOf(m.index)),
    isRunning: (i) => member(i).process !== null,
    pid: (i) => member(i).process?.pid,
    log: (i) => member(i).log,
    kill: (i, signal = 'SIGKILL') => killMember(member(i), signal),
    restart: async (i) => {
      const m = member(i);
      if (m.process) await killMember(m, 'SIGKILL');
      launch(m);
      await waitReady(i);
    },
    waitReady,
    partition: (i) => script('partition', String(i)),
    heal: (i) => script('heal', String(i)),
    shape: (i, args) => script('shape', String(i), ...args),
    unshape: (i) => script('unshape', String(i)),
    stop,
  };
}
