#!/usr/bin/env -S node --max-semi-space-size=32
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
// `hybster`: the validator's command line (commander). Every command answers bad
// input with one clear line and a non-zero exit code, never a stack trace.
import './threadpool.js';
import { Command, Option } from 'commander';
import { toHex } from '../ledger/codec/binary.js';
import { keyPairFromSeed } from '../ledger/keys.js';
import { encodeTx, signTx } from '../ledger/tx.js';
import { parseValidatorKey } from './chain-spec.js';
import { flagName, SETTINGS } from './config.js';
import { readKeyFile } from './security/keyfile.js';

const program = new Command();
program
  .name('hybster')
  .description('Hybster validator: hybrid BFT ordering over RDMA, LevelDB ledger, REST API and explorer')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

function fail(message: string): never {
  process.stderr.write(`hybster: ${message}\n`);
  process.exit(1);
}

async function guard(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    fail((e as Error).message ?? String(e));
  }
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a non-negative integer, got "${v}"`);
  return n;
};

program
  .command('init')
  .description('create keys and config for one validator (and a one-validator genesis when none exists)')
  .requiredOption('--home <dir>', 'validator home directory')
  .option('--chain-id <id>', 'chain id for a new genesis', 'hybster-local')
  .option('--force', 'overwrite an existing config.json (never an existing key)')
  .action((o: { home: string; chainId: string; force?: boolean }) =>
    guard(async () => {
      const { initHome } = await import('./home.js');
      const r = await initHome({ home: resolve(o.home), chainId: o.chainId, force: o.force === true });
      console.log(`initialized ${r.home}`);
      console.log(`  public key ${r.publicKeyHex}`);
      console.log(`  peer id    ${r.peerId}`);
      console.log(
        `  genesis    ${r.genesisCreated ? 'created (one validator)' : 'kept existing genesis.json'}`,
      );
      console.log(`start it with: hybster start --home ${r.home}`);
    }),
  );

program
  .command('testnet')
  .description('create a whole local network: one home directory per validator')
  .requiredOption('--validators <n>', 'number of validators (odd: n = 2f + 1)', positiveInt('--validators'))
  .requiredOption('--out <dir>', 'output directory')
  .addOption(new Option('--transport <kind>', 'replica transport').choices(['tcp', 'rdma']).default('tcp'))
  .option('--provider <name>', 'libfabric provider for rdma', 'tcp;ofi_rxm')
  .option('--pillars <p>', 'parallel ordering instances', positiveInt('--pillars'), 1)
  .option(
    '--api-port-base <port>',
    'API port of validator 0; validator i gets base + i',
    positiveInt('--api-port-base'),
    7000,
  )
  .option('--api-ports <list>', 'explicit API ports, comma separated (overrides --api-port-base)')
  .option(
    '--base-port <port>',
    'first replica/libp2p port (0 = pick free ports)',
    positiveInt('--base-port'),
    0,
  )
  .option('--chain-id <id>', 'chain id', 'hybster-testnet')
  .option(
    '--accounts <n>',
    'funded accounts to create (keys in <out>/accounts.json)',
    positiveInt('--accounts'),
    4,
  )
  .action(
    (o: {
      validators: number;
      out: string;
      transport: 'tcp' | 'rdma';
      provider: string;
      pillars: number;
      apiPortBase: number;
      apiPorts?: string;
      basePort: number;
      chainId: string;
      accounts: number;
    }) =>
      guard(async () => {
        if (o.validators < 1 || o.validators % 2 !== 1) fail('--validators must be odd (n = 2f + 1)');
        const apiPorts = o.apiPorts
          ? o.apiPorts.split(',').map((s) => positiveInt('--api-ports')(s.trim()))
          : Array.from({ length: o.validators }, (_, i) => o.apiPortBase + i);
        if (apiPorts.length !== o.validators)
          fail(`--api-ports lists ${apiPorts.length} ports for ${o.validators} validators`);
        const { writeTestnet } = await import('./home.js');
        const r = await writeTestnet({
          outDir: resolve(o.out),
          validators: o.validators,
          transport: o.transport,
          provider: o.provider,
          pillars: o.pillars,
          apiPorts,
          basePort: o.basePort,
          chainId: o.chainId,
          accounts: o.accounts,
        });
        console.log(`testnet of ${o.validators} validators in ${r.outDir}`);
        for (const h of r.homes) console.log(`  ${h.home}  api ${h.apiUrl}  ${o.transport} ${h.endpoint}`);
        console.log(`funded account keys: ${r.accountsFile}`);
      }),
  );

const start = program
  .command('start')
  .description('run a validator until SIGINT/SIGTERM')
  .requiredOption('--home <dir>', 'validator home directory');
for (const s of SETTINGS) {
  const opt = new Option(`--${flagName(s.path)} <value>`, `${s.description} (config ${s.path})`);
  start.addOption(opt);
}
start.action(async (o: Record<string, string>) => {
  const flags: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const key = flagName(s.path).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (o[key] !== undefined) flags[s.path] = o[key];
  }
  // Loaded on demand: the API, libp2p and the ledger are heavy to import for the other commands.
  const { runStart } = await import('./start.js');
  return runStart(resolve(o.home as string), flags);
});

const keys = program.command('keys').description('validator keys');
keys
  .command('show')
  .description('print the validator public key and libp2p peer id (never the secret)')
  .requiredOption('--home <dir>', 'validator home directory')
  .option('--key-file <path>', 'key file (default <home>/keys/validator.key)')
  .action((o: { home: string; keyFile?: string }) =>
    guard(async () => {
      const path = o.keyFile ?? resolve(o.home, 'keys', 'validator.key');
      const kp = keyPairFromSeed(parseValidatorKey(await readKeyFile(path), path));
      const { peerIdForValidatorKey } = await import('./discovery.js');
      console.log(
        JSON.stringify(
          { publicKey: toHex(kp.publicKey), peerId: peerIdForValidatorKey(kp.publicKey) },
          null,
          2,
        ),
      );
    }),
  );

const tx = program.command('tx').description('transactions');
tx.command('send')
  .description('sign a transfer with a key file and submit it through a validator API')
  .requiredOption(
    '--key <file>',
    'sender key file (hex seed, JSON with secretKey, or a testnet accounts.json)',
  )
  .option('--account <i>', 'which entry of an accounts.json list to use', '0')
  .requiredOption('--to <address>', 'recipient address (hex public key)')
  .requiredOption('--amount <n>', 'amount to transfer')
  .option('--api <url>', 'validator API', 'http://127.0.0.1:7000')
  .option('--nonce <n>', 'nonce (default: the account nonce + 1, asked from the API)')
  .option('--chain-id <id>', 'chain id (default: asked from the API)')
  .option('--wait', 'wait until the tx is in a block')
  .action(
    (o: {
      key: string;
      account: string;
      to: string;
      amount: string;
      api: string;
      nonce?: string;
      chainId?: string;
      wait?: boolean;
    }) =>
      guard(async () => {
        let keyBytes: Uint8Array = readFileSync(o.key);
        const text = new TextDecoder().decode(keyBytes).trim();
        if (text.startsWith('[')) {
          // A testnet's accounts.json: pick one entry.
          const list = JSON.parse(text) as { secretKey?: string }[];
          const secret = list[Number(o.account)]?.secretKey;
          if (secret === undefined) fail(`${o.key} has no account ${o.account}`);
          keyBytes = new TextEncoder().encode(secret);
        }
        const kp = keyPairFromSeed(parseValidatorKey(keyBytes, o.key));
        if (!/^[0-9a-fA-F]{64}$/.test(o.to)) fail('--to must be a 32-byte hex address');
        if (!/^\d+$/.test(o.amount)) fail('--amount must be a non-negative integer');
        const from = toHex(kp.publicKey);
        const get = async (path: string): Promise<Record<string, unknown>> => {
          const res = await fetch(`${o.api}${path}`);
          if (!res.ok) fail(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
          return (await res.json()) as Record<string, unknown>;
        };
        const chainId =
          o.chainId ?? String((await get('/v1/status')).chainId ?? fail('API status has no chainId'));
        const nonce =
          o.nonce !== undefined
            ? BigInt(o.nonce)
            : BigInt(String((await get(`/v1/accounts/${from}`)).nonce ?? '0')) + 1n;
        const signed = signTx(
          {
            chainId,
            from: kp.publicKey,
            nonce,
            payload: { type: 'transfer', to: Buffer.from(o.to, 'hex'), amount: BigInt(o.amount) },
          },
          kp.secretKey,
        );
        const res = await fetch(`${o.api}/v1/txs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tx: toHex(encodeTx(signed)), mode: o.wait ? 'commit' : 'async' }),
        });
        const body = await res.text();
        if (!res.ok) fail(`submit: HTTP ${res.status} ${body}`);
        console.log(body);
      }),
  );

program
  .command('status')
  .description('print a validator status')
  .option('--api <url>', 'validator API', 'http://127.0.0.1:7000')
  .action((o: { api: string }) =>
    guard(async () => {
      const res = await fetch(`${o.api}/v1/status`).catch((e: Error) =>
        fail(`cannot reach ${o.api}: ${e.message}`),
      );
      if (!res.ok) fail(`HTTP ${res.status}`);
      console.log(JSON.stringify(await res.json(), null, 2));
    }),
  );

program
  .command('backup')
  .description('snapshot <home>/data into a file (works while the validator runs)')
  .requiredOption('--home <dir>', 'validator home directory')
  .requiredOption('--out <file>', 'snapshot file to write')
  .action((o: { home: string; out: string }) =>
    guard(async () => {
      const { backupHome } = await import('./ops/backup.js');
      const r = await backupHome(resolve(o.home), resolve(o.out));
      console.log(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
    }),
  );

program
  .command('restore')
  .description('replace <home>/data with a snapshot (validator must be stopped)')
  .requiredOption('--home <dir>', 'validator home directory')
  .requiredOption('--from <file>', 'snapshot file')
  .option('--yes', 'really replace the existing data directory')
  .action((o: { home: string; from: string; yes?: boolean }) =>
    guard(async () => {
      const { planRestore, restoreHome } = await import('./ops/restore.js');
      if (!o.yes) {
        console.log((await planRestore(resolve(o.home), resolve(o.from))).message);
        console.log('re-run with --yes to proceed');
        return;
      }
      const r = await restoreHome(resolve(o.home), resolve(o.from), { yes: true });
      console.log(r.message);
    }),
  );

program
  .command('unsafe-reset')
  .description('delete <home>/data (ledger and consensus state), keeping keys and config')
  .requiredOption('--home <dir>', 'validator home directory')
  .option('--yes', 'really delete')
  .action((o: { home: string; yes?: boolean }) =>
    guard(async () => {
      const { planUnsafeReset, unsafeReset } = await import('./ops/reset.js');
      if (!o.yes) {
        console.log((await planUnsafeReset(resolve(o.home))).message);
        console.log('re-run with --yes to proceed');
        return;
      }
      const r = await unsafeReset(resolve(o.home), { yes: true });
      console.log(`deleted ${r.deleted.join(', ')}; kept ${r.keeps.join(', ')}`);
    }),
  );

await program.parseAsync(process.argv);
