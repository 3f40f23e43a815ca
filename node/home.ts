// Validator home directories: `hybster init` (one validator) and `hybster testnet`
// (a whole local network). A home holds config.json, genesis.json and
// keys/validator.key (mode 0600); data/ appears on first start.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { toHex } from '../ledger/codec/binary.js';
import { generateKeyPair, type KeyPair } from '../ledger/keys.js';
import { writeKeyFile } from './security/keyfile.js';
import { peerIdForValidatorKey } from './discovery.js';

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

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function endpointFor(transport: 'tcp' | 'rdma', provider: string, port: number): string {
  return transport === 'rdma' ? `rdma+${provider}://127.0.0.1:${port}` : `127.0.0.1:${port}`;
}

function genesisDocument(
  chainId: string,
  validators: { name: string; key: KeyPair; endpoints: Record<string, string> }[],
  accounts: KeyPair[],
  pillars: number,
): unknown {
  return {
    chainId,
    genesisTimeMs: String(Date.now()),
    validators: validators.map((v) => ({
      name: v.name,
      publicKey: toHex(v.key.publicKey),
      peerId: peerIdForValidatorKey(v.key.publicKey),
      endpoints: v.endpoints,
    })),
    accounts: accounts.map((a) => ({ address: toHex(a.publicKey), balance: ACCOUNT_BALANCE.toString() })),
    consensus: {
      pillars,
      checkpointInterval: 32,
      window: 128 * pillars,
      batchTxsMax: 2000,
      batchBytesMax: 1 << 20,
      viewTimeoutMs: 1000,
      requestTimeoutMs: 1500,
    },
  };
}

export async function writeTestnet(spec: TestnetSpec): Promise<TestnetResult> {
  const n = spec.validators;
  const ports = spec.basePort > 0 ? Array.from({ length: 2 * n }, (_, i) => spec.basePort + i) : await freePorts(2 * n);
  const keys = Array.from({ length: n }, () => generateKeyPair());
  const accountKeys = Array.from({ length: spec.accounts }, () => generateKeyPair());
  const validators = keys.map((key, i) => ({
    name: `validator${i}`,
    key,
    endpoints: { [spec.transport]: endpointFor(spec.transport, spec.provider, ports[i] as number) },
  }));
  const genesis = `${JSON.stringify(genesisDocument(spec.chainId, validators, accountKeys, spec.pillars), null, 2)}\n`;
  const p2pAddr = (i: number) =>
    `/ip4/127.0.0.1/tcp/${ports[n + i]}/p2p/${peerIdForValidatorKey((keys[i] as KeyPair).publicKey)}`;
  await mkdir(spec.outDir, { recursive: true });
  const homes: TestnetResult['homes'] = [];
  for (let i = 0; i < n; i++) {
    const home = join(spec.outDir, `validator${i}`);
    await mkdir(home, { recursive: true });
    await writeFile(join(home, 'genesis.json'), genesis);
    await writeKeyFile(join(home, 'keys', 'validator.key'), `${toHex((keys[i] as KeyPair).secretKey)}\n`, { overwrite: true });
    const config = {
      validatorIndex: i,
      transport: {
        kind: spec.transport,
        listen: endpointFor(spec.transport, spec.provider, ports[i] as number),
        provider: spec.provider,
      },
      api: { host: '127.0.0.1', port: spec.apiPorts[i] },
      p2p: {
        listen: `/ip4/127.0.0.1/tcp/${ports[n + i]}`,
        bootstrap: Array.from({ length: n }, (_, j) => j)
          .filter((j) => j !== i)
          .map(p2pAddr),
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
  if (existsSync(configPath) && !o.force) throw new Error(`${configPath} exists (use --force to overwrite it)`);
  const key = generateKeyPair();
  await mkdir(o.home, { recursive: true });
  await writeKeyFile(keyPath, `${toHex(key.secretKey)}\n`);
  await writeFile(
    configPath,
    `${JSON.stringify({ transport: { kind: 'tcp', listen: '127.0.0.1:26600' }, api: { port: 7000 } }, null, 2)}\n`,
  );
  const genesisPath = join(o.home, 'genesis.json');
  let genesisCreated = false;
  if (!existsSync(genesisPath)) {
    const doc = genesisDocument(o.chainId, [{ name: 'validator0', key, endpoints: { tcp: '127.0.0.1:26600' } }], [], 1);
    await writeFile(genesisPath, `${JSON.stringify(doc, null, 2)}\n`);
    genesisCreated = true;
  }
  return { home: o.home, publicKeyHex: toHex(key.publicKey), peerId: peerIdForValidatorKey(key.publicKey), genesisCreated };
}
