// Real validator processes for integration tests: generates a network with
// `hybster testnet`, starts each validator with `hybster start` as a child process,
// waits for their APIs, and hands back URLs plus kill/restart controls. Used by the
// node, api, ops and security tests; keep this API stable.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../node/home.js';
import { VALIDATOR_V8_FLAGS } from '../../node/runtime-flags.js';
import { isShmRegionOf, parseEndpoint } from '../../rdma-native/wire.js';

/** dist/test/helpers/testnet.js -> dist/node/cli.js (same build dir). */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node', 'cli.js');

export interface TestnetOptions {
  validators: number;
  transport?: 'tcp' | 'rdma';
  /** Reuse/create this directory; by default a fresh temp dir that stop() removes. */
  dir?: string;
  /** First API port; validator i listens on apiPortBase + i. 0 (default) picks free ports. */
  apiPortBase?: number;
  /** Extra env for every validator process (e.g. HYBSTER_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Extra env for one validator process, over `env` (e.g. a skewed clock for validator 0). */
  envFor?: (index: number) => Record<string, string>;
  /** Extra args passed to `hybster testnet` (e.g. ['--pillars', '2']). */
  testnetArgs?: string[];
  /** Wait for all APIs to answer (default true). */
  wait?: boolean;
  /** Longest wait for startup, ms (default 60000: a loaded CI machine takes a while to load the node). */
  startTimeoutMs?: number;
  /** Echo validator output to this process's stderr (default: env HYBSTER_TEST_LOGS=1). */
  echoLogs?: boolean;
  /** Extra node flags for each validator process (e.g. ['--cpu-prof'] for profiling). */
  nodeArgs?: string[];
}

export interface ValidatorProcess {
  index: number;
  home: string;
  apiUrl: string;
  /** null while stopped. */
  process: ChildProcess | null;
  /** Recent output lines (bounded), for diagnosing a failing test. */
  log: string[];
}

export interface Testnet {
  dir: string;
  validators: ValidatorProcess[];
  apiUrls: string[];
  /** Sends a signal (default SIGKILL) and waits for the process to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped validator again (same home, same API port) and waits for its API. */
  restart(index: number): Promise<void>;
  /** Waits until GET /v1/status answers on validator `index`. */
  waitReady(index: number, timeoutMs?: number): Promise<void>;
  /** Kills every validator and removes the directory if it was a temp dir. */
  stop(): Promise<void>;
}

const LOG_LINES_MAX = 400;

/**
 * Deletes the /dev/shm regions of validators that listened at `rdma+shm://host:port` (see
 * rdma-native/wire.ts shmNodeName). A SIGKILLed owner leaves its region for a successor to
 * take over; at a testnet's end there is none, and each region is a 16 MiB (sparse) file.
 * Only after every validator has exited: a live peer may still map a region.
 */
function removeShmRegions(homes: readonly string[]): void {
  const nodes: string[] = [];
  for (const home of homes) {
    try {
      const g = JSON.parse(readFileSync(join(home, 'genesis.json'), 'utf8')) as {
        validators?: { endpoints?: { rdma?: string } }[];
      };
      for (const v of g.validators ?? []) {
        const e = parseEndpoint(v.endpoints?.rdma ?? '');
        if (e?.shmNode !== undefined) nodes.push(e.shmNode);
      }
      break; // every home holds the same genesis
    } catch {
      // no genesis (a failed start): nothing was listening
    }
  }
  if (nodes.length === 0) return;
  let regions: string[];
  try {
    regions = readdirSync('/dev/shm');
  } catch {
    return;
  }
  for (const r of regions)
    if (nodes.some((n) => isShmRegionOf(r, n))) rmSync(`/dev/shm/${r}`, { force: true });
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI_PATH, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('error', reject);
    p.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`hybster ${args.join(' ')} exited ${code}:\n${out}`));
    });
  });
}

export async function startTestnet(opts: TestnetOptions): Promise<Testnet> {
  if (!existsSync(CLI_PATH)) throw new Error(`validator CLI not built at ${CLI_PATH}`);
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'hybster-testnet-'));
  const transport = opts.transport ?? 'tcp';
  const echo = opts.echoLogs ?? process.env.HYBSTER_TEST_LOGS === '1';
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, HYBSTER_LOG_FORMAT: 'json', ...opts.env };
  const apiPorts =
    opts.apiPortBase !== undefined && opts.apiPortBase > 0
      ? Array.from({ length: opts.validators }, (_, i) => (opts.apiPortBase as number) + i)
      : await freePorts(opts.validators);
  if (!existsSync(join(dir, 'validator0', 'config.json'))) {
    await runCli(
      [
        'testnet',
        '--validators',
        String(opts.validators),
        '--out',
        dir,
        '--transport',
        transport,
        '--api-port-base',
        String(apiPorts[0]),
        '--api-ports',
        apiPorts.join(','),
        ...(opts.testnetArgs ?? []),
      ],
      baseEnv,
    );
  }
  const validators: ValidatorProcess[] = apiPorts.map((port, index) => ({
    index,
    home: join(dir, `validator${index}`),
    apiUrl: `http://127.0.0.1:${port}`,
    process: null,
    log: [],
  }));

  const launch = (v: ValidatorProcess): void => {
    // The validator flags first: a bench's nodeArgs may override them.
    const args = [...VALIDATOR_V8_FLAGS, ...(opts.nodeArgs ?? []), CLI_PATH, 'start', '--home', v.home];
    const p = spawn(process.execPath, args, {
      env: { ...baseEnv, ...opts.envFor?.(v.index), HYBSTER_API_PORT: new URL(v.apiUrl).port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) {
        if (line.length === 0) continue;
        v.log.push(line);
        if (v.log.length > LOG_LINES_MAX) v.log.shift();
        if (echo) process.stderr.write(`[v${v.index}] ${line}\n`);
      }
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    p.once('exit', () => {
      if (v.process === p) v.process = null;
    });
    v.process = p;
  };

  const waitReady = async (index: number, timeoutMs = opts.startTimeoutMs ?? 60_000): Promise<void> => {
    const v = validators[index];
    if (!v) throw new RangeError(`no validator ${index}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (v.process === null) {
        throw new Error(`validator ${index} exited during startup:\n${v.log.slice(-40).join('\n')}`);
      }
      try {
        const res = await fetch(`${v.apiUrl}/v1/status`, { signal: AbortSignal.timeout(5000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(
          `validator ${index} API not up after ${timeoutMs} ms:\n${v.log.slice(-40).join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const kill = async (index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const v = validators[index];
    const p = v?.process;
    if (!v || !p) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    v.process = null;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(validators.map((v) => kill(v.index, 'SIGKILL')));
    removeShmRegions(validators.map((v) => v.home));
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };

  for (const v of validators) launch(v);
  if (opts.wait ?? true) {
    try {
      await Promise.all(validators.map((v) => waitReady(v.index)));
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return {
    dir,
    validators,
    apiUrls: validators.map((v) => v.apiUrl),
    kill,
    restart: async (index: number) => {
      const v = validators[index];
      if (!v) throw new RangeError(`no validator ${index}`);
      if (v.process) await kill(index);
      launch(v);
      await waitReady(index);
    },
    waitReady,
    stop,
  };
}
