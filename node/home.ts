// Validator home directories: `hybster init` (one validator) and `hybster testnet`
// (a whole local network). A home holds config.json, genesis.json and
// keys/validator.key (mode 0600); data/ appears on first start.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { batchBytesMaxFitting, makeConfig } from '../consensus/index.js';
import { type GenesisJson, parseGenesis } from '../genesis/genesis.js';
import { toHex } from '../ledger/codec/binary.js';
import { generateKeyPair, type KeyPair } from '../ledger/keys.js';
import { peerIdForValidatorKey } from './discovery.js';
import { writeKeyFile } from './security/keyfile.js';

export interface TestnetSpec {
  outDir: string;
  validators: number;
  transport: 'tcp' | 'rdma';
  provider: string;
  pillars: number;
  apiPorts: number[];
  /** First replica/libp2p port; 0 picks free ports now (they are written into config and genesis). */
  basePort: number;
  chainId: string;
  /** Funded accounts whose keys go to <outDir>/accounts.json (for tx send, tests and benchmarks). */
  accounts: number;
}

export interface TestnetResult {
  outDir: string;
  homes: { home: string; apiUrl: string; endpoint: string }[];
  accountsFile: string;
}

const ACCOUNT_BALANCE = 1_000_000_000_000n;

/**
 * n distinct ports that are free now, picked at random below the kernel's ephemeral range
 * (32768+), where outgoing connections of other processes would otherwise grab them
 * between this check and the validators binding them.
 */
export async function freePorts(n: number): Promise<number[]> {
  const net = await import('node:net');
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  const ports: number[] = [];
  for (let tries = 0; ports.length < n; tries++) {
    if (tries > 10_000) throw new Error('no free ports found in 20000-32000');
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!ports.includes(port) && (await free(port))) ports.push(port);
  }
  return ports;
}

function endpointFor(transport: 'tcp' | 'rdma', provider: string, port: number): string {
  return transport === 'rdma' ? `rdma+${provider}://127.0.0.1:${port}` : `127.0.0.1:${port}`;
}

interface GenesisValidatorInput {
  name: string;
  key: KeyPair;
  tcp: string;
  rdma?: string;
  libp2p: string[];
}

/** Replica frames the generated config allows (transport.messageBytesMax default). */
const DEVNET_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * A NEW-VIEW carries up to f + 1 histories of a pillar's window of batches plus the
 * re-proposals, so the batch size that fits one replica frame shrinks as n grows; node/start.ts
 * refuses parameters that do not fit. 160 KiB (about 1,000 transfers) at n = 3.
 */
function devnetBatchBytesMax(n: number, pillars: number): number {
  const probe = makeConfig({
    n,
    pillars,
    window: 32 * pillars,
    checkpointInterval: 16,
    batchBytesMax: 64 * 1024,
  });
  return Math.min(160 * 1024, batchBytesMaxFitting(probe, DEVNET_FRAME_BYTES - 64));
}

/** A genesis document in genesis/'s layout (checked by parseGenesis before it is written). */
function genesisDocument(
  chainId: string,
  validators: GenesisValidatorInput[],
  accounts: KeyPair[],
  pillars: number,
): GenesisJson {
  const doc: GenesisJson = {
    chainId,
    genesisTime: new Date().toISOString(),
    validators: validators.map((v) => ({
      name: v.name,
      publicKey: toHex(v.key.publicKey),
      peerId: peerIdForValidatorKey(v.key.publicKey),
      endpoints: { tcp: v.tcp, ...(v.rdma ? { rdma: v.rdma } : {}), libp2p: v.libp2p },
    })),
    consensus: {
      f: (validators.length - 1) / 2,
      pillars,
      batchTxsMax: 1000,
      batchBytesMax: devnetBatchBytesMax(validators.length, pillars),
      checkpointInterval: 16,
      window: 32 * pillars,
      requestTimeoutMs: 1500,
      viewChangeTimeoutMs: 1000,
    },
    accounts: accounts.map((a) => ({ address: toHex(a.publicKey), balance: ACCOUNT_BALANCE.toString() })),
  };
  const check = parseGenesis(doc);
  if (!check.ok) throw new Error(`generated genesis is invalid: ${check.error.message}`);
  return doc;
}

export async function writeTestnet(spec: TestnetSpec): Promise<TestnetResult> {
  const n = spec.validators;
  const ports =
    spec.basePort > 0 ? Array.from({ length: 2 * n }, (_, i) => spec.basePort + i) : await freePorts(2 * n);
  const keys = Array.from({ length: n }, () => generateKeyPair());
  const trinxKey = `${randomBytes(32).toString('hex')}\n`;
  const accountKeys = Array.from({ length: spec.accounts }, () => generateKeyPair());
  const validators: GenesisValidatorInput[] = keys.map((key, i) => ({
    name: `validator${i}`,
    key,
    tcp: `127.0.0.1:${ports[i]}`,
    ...(spec.transport === 'rdma' ? { rdma: endpointFor('rdma', spec.provider, ports[i] as number) } : {}),
    libp2p: [`/ip4/127.0.0.1/tcp/${ports[n + i]}`],
  }));
  const genesis = `${JSON.stringify(genesisDocument(spec.chainId, validators, accountKeys, spec.pillars), null, 2)}\n`;
  await mkdir(spec.outDir, { recursive: true });
  const homes: TestnetResult['homes'] = [];
  for (let i = 0; i < n; i++) {
    const home = join(spec.outDir, `validator${i}`);
    await mkdir(home, { recursive: true });
    await writeFile(join(home, 'genesis.json'), genesis);
    await writeKeyFile(join(home, 'keys', 'validator.key'), `${toHex((keys[i] as KeyPair).secretKey)}\n`, {
      overwrite: true,
    });
    await writeKeyFile(join(home, 'keys', 'trinx.key'), trinxKey, { overwrite: true });
    const config = {
      validatorIndex: i,
      transport: {
        kind: spec.transport,
        listen: endpointFor(spec.transport, spec.provider, ports[i] as number),
        provider: spec.provider,
      },
      api: { host: '127.0.0.1', port: spec.apiPorts[i] },
      p2p: {
        // The other validators' libp2p addresses come from genesis; config may add more.
        listen: `/ip4/127.0.0.1/tcp/${ports[n + i]}`,
        // A local network stays on loopback: no multicast on the LAN.
        mdns: false,
      },
    };
    await writeFile(join(home, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    homes.push({
      home,
      apiUrl: `http://127.0.0.1:${spec.apiPorts[i]}`,
      endpoint: endpointFor(spec.transport, spec.provider, ports[i] as number),
    });
  }
  const accountsFile = join(spec.outDir, 'accounts.json');
  await writeKeyFile(
    accountsFile,
    `${JSON.stringify(
      accountKeys.map((a) => ({ address: toHex(a.publicKey), secretKey: toHex(a.secretKey) })),
      null,
      2,
    )}\n`,
    { overwrite: true },
  );
  return { outDir: spec.outDir, homes, accountsFile };
}

export interface InitResult {
  home: string;
  publicKeyHex: string;
  peerId: string;
  genesisCreated: boolean;
}

/** Keys and config for one validator; a one-validator genesis when the home has none. */
export async function initHome(o: { home: string; chainId: string; force: boolean }): Promise<InitResult> {
  const keyPath = join(o.home, 'keys', 'validator.key');
  if (existsSync(keyPath)) throw new Error(`${keyPath} exists; refusing to replace a validator key`);
  const configPath = join(o.home, 'config.json');
  if (existsSync(configPath) && !o.force)
    throw new Error(`${configPath} exists (use --force to overwrite it)`);
  const key = generateKeyPair();
  await mkdir(o.home, { recursive: true });
  await writeKeyFile(keyPath, `${toHex(key.secretKey)}\n`);
  const trinxPath = join(o.home, 'keys', 'trinx.key');
  if (!existsSync(trinxPath)) await writeKeyFile(trinxPath, `${randomBytes(32).toString('hex')}\n`);
  await writeFile(
    configPath,
    `${JSON.stringify(
      {
        transport: { kind: 'tcp', listen: '127.0.0.1:26600' },
        api: { port: 7000 },
        p2p: { listen: '/ip4/127.0.0.1/tcp/26700', mdns: true },
      },
      null,
      2,
    )}\n`,
  );
  const genesisPath = join(o.home, 'genesis.json');
  let genesisCreated = false;
  if (!existsSync(genesisPath)) {
    const doc = genesisDocument(
      o.chainId,
      [{ name: 'validator0', key, tcp: '127.0.0.1:26600', libp2p: ['/ip4/127.0.0.1/tcp/26700'] }],
      [],
      1,
    );
    await writeFile(genesisPath, `${JSON.stringify(doc, null, 2)}\n`);
    genesisCreated = true;
  }
  return {
    home: o.home,
    publicKeyHex: toHex(key.publicKey),
    peerId: peerIdForValidatorKey(key.publicKey),
    genesisCreated,
  };
}
