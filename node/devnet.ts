// `npm run devnet`: a local 3-validator network in one command. Creates the network
// in a temporary directory (or the one given as the first argument, reused when it
// already holds a network), starts each validator as its own process with its own
// LevelDB, prints the API and explorer URLs, and stops everything on Ctrl-C.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestnet } from './home.js';
import { VALIDATOR_V8_FLAGS } from './runtime-flags.js';

const VALIDATORS = 3;
const API_PORT_BASE = Number(process.env.HYBSTER_DEVNET_API_PORT_BASE ?? 7000);
const cli = join(dirname(fileURLToPath(import.meta.url)), 'cli.js');

const given = process.argv[2];
const dir = given ? resolve(given) : mkdtempSync(join(tmpdir(), 'hybster-devnet-'));
const temporary = !given;
const transport = (process.env.HYBSTER_DEVNET_TRANSPORT ?? 'tcp') as 'tcp' | 'rdma';

if (!existsSync(join(dir, 'validator0', 'config.json'))) {
  await writeTestnet({
    outDir: dir,
    validators: VALIDATORS,
    transport,
    provider: 'tcp;ofi_rxm',
    pillars: 1,
    apiPorts: Array.from({ length: VALIDATORS }, (_, i) => API_PORT_BASE + i),
    basePort: 0,
    chainId: 'hybster-devnet',
    accounts: 4,
  });
}

const children: ChildProcess[] = [];
let stopping = false;
for (let i = 0; i < VALIDATORS; i++) {
  const home = join(dir, `validator${i}`);
  const child = spawn(process.execPath, [...VALIDATOR_V8_FLAGS, cli, 'start', '--home', home], {
    env: { ...process.env, HYBSTER_LOG_FORMAT: process.env.HYBSTER_LOG_FORMAT ?? 'pretty' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`validator ${i} exited (${signal ?? code}); stopping the devnet`);
      void stop(1);
    }
  });
  children.push(child);
}

console.log(
  `\nhybster devnet: ${VALIDATORS} validators (${transport}), data in ${dir}${temporary ? ' (temporary)' : ''}`,
);
for (let i = 0; i < VALIDATORS; i++)
  console.log(`  validator ${i}: API http://127.0.0.1:${API_PORT_BASE + i}`);
console.log(`  explorer:    http://127.0.0.1:${API_PORT_BASE}/`);
console.log(`  funded account keys: ${join(dir, 'accounts.json')}`);
console.log('Ctrl-C stops everything.\n');

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 15_000).unref();
        }),
    ),
  );
  if (temporary) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
