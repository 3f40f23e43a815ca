// Local network generator: n = 2f + 1 validators, each with a home directory holding
//   config.json        minimal node config (schema owned by node/config.ts)
//   genesis.json       the shared genesis (identical bytes in every home)
//   keys/validator.key JSON {type, publicKey, secretKey, peerId}, mode 0600
//   keys/libp2p.key    the same key as a libp2p protobuf private key, mode 0600
// Ports for validator i: API basePort + i, libp2p basePort + 1000 + i, replica TCP
// transport basePort + 2000 + i (defaults 7000/8000/9000), all on 127.0.0.1.

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { batchBytesMaxFitting, makeConfig } from '../consensus/config.js';
import { toHex } from '../ledger/codec/binary.js';
import { generateKeyPair, type KeyPair, keyPairFromSeed } from '../ledger/keys.js';
import {
  type ConsensusParams,
  type Genesis,
  type GenesisJson,
  genesisHash,
  genesisToJson,
  parseGenesis,
  peerIdFor,
} from './genesis.js';

export interface TestnetOptions {
  /** Number of validators; must be odd (n = 2f + 1). */
  validators: number;
  outDir: string;
  chainId?: string;
  /** API port of validator 0; see the header comment for the other ports. */
  basePort?: number;
  pillars?: number;
  /** Defaults to now, rounded to the second. */
  genesisTime?: string;
  consensus?: Partial<Omit<ConsensusParams, 'f' | 'pillars'>>;
  /** Extra funded accounts; by default each validator's own address gets `validatorBalance`. */
  accounts?: { address: Uint8Array; balance: bigint }[];
  validatorBalance?: bigint;
  /** Deterministic keys for tests (one 32-byte seed per validator). */
  seeds?: Uint8Array[];
}

export interface TestnetNode {
  index: number;
  name: string;
  home: string;
  configPath: string;
  genesisPath: string;
  keyPath: string;
  libp2pKeyPath: string;
  publicKeyHex: string;
  peerId: string;
  apiPort: number;
  libp2pPort: number;
  tcpPort: number;
}

export interface Testnet {
  genesis: Genesis;
  genesisJson: GenesisJson;
  genesisHashHex: string;
  nodes: TestnetNode[];
}

export const CONSENSUS_DEFAULTS: Omit<ConsensusParams, 'f' | 'pillars'> = {
  batchTxsMax: 1000,
  // Sized so the largest NEW-VIEW (n = 3) fits a 16 MiB replica frame; see node/home.ts.
  batchBytesMax: 160 * 1024,
  checkpointInterval: 16,
  window: 32,
  requestTimeoutMs: 2000,
  viewChangeTimeoutMs: 2000,
  timestampDriftMsMax: 30_000,
};

/**
 * Window per pillar, and the batch size for which the largest NEW-VIEW (f + 1 histories of a
 * window of batches plus the re-proposals) fits a 16 MiB replica frame: it shrinks as n grows.
 */
function fittingDefaults(n: number, pillars: number): { window: number; batchBytesMax: number } {
  const window = CONSENSUS_DEFAULTS.window * pillars;
  const probe = makeConfig({ n, pillars, window, checkpointInterval: CONSENSUS_DEFAULTS.checkpointInterval });
  return {
    window,
    batchBytesMax: Math.min(CONSENSUS_DEFAULTS.batchBytesMax, batchBytesMaxFitting(probe, FRAME_BYTES - 64)),
  };
}

const FRAME_BYTES = 16 * 1024 * 1024;

export class TestnetError extends Error {
  override readonly name = 'TestnetError';
}

/** The minimal config.json the generator writes; node/config.ts validates the full schema. */
export interface GeneratedConfig {
  validatorIndex: number;
  dataDir: string;
  genesisFile: string;
  keyFile: string;
  transport: { kind: 'tcp'; listen: string };
  api: { host: string; port: number };
  p2p: { listen: string; bootstrap: string[] };
}

/** Writes a key file readable only by its owner, refusing to follow an existing file's mode. */
function writeSecret(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600); // the file may have existed with a wider mode; umask could not widen it
}

export async function generateTestnet(o: TestnetOptions): Promise<Testnet> {
  const n = o.validators;
  if (!Number.isInteger(n) || n < 1 || n % 2 === 0) {
    throw new TestnetError(`validators must be an odd number n = 2f + 1 (got ${n})`);
  }
  if (o.seeds !== undefined && o.seeds.length !== n)
    throw new TestnetError('seeds must hold one seed per validator');
  const f = (n - 1) / 2;
  const basePort = o.basePort ?? 7000;
  if (basePort < 1 || basePort + 2000 + n > 65535)
    throw new TestnetError(`basePort ${basePort} leaves no room for ${n} validators`);
  const outDir = resolve(o.outDir);
  const keys: KeyPair[] = Array.from({ length: n }, (_, i) =>
    o.seeds?.[i] !== undefined ? keyPairFromSeed(o.seeds[i]!) : generateKeyPair(),
  );
  // The software TrInX key: one per network, never in genesis (which is public).
  const trinxKeyHex = `${randomBytes(32).toString('hex')}\n`;
  const names = keys.map((_, i) => `validator-${i}`);
  const ports = keys.map((_, i) => ({
    api: basePort + i,
    libp2p: basePort + 1000 + i,
    tcp: basePort + 2000 + i,
  }));
  const peerIds = keys.map((k) => {
    const id = peerIdFor(k.publicKey);
    if (id === null) throw new Error('invariant: generated key has no peer id');
    return id;
  });
  const balance = o.validatorBalance ?? 1_000_000_000_000n;
  const accounts = o.accounts ?? keys.map((k) => ({ address: k.publicKey, balance }));
  const pillars = o.pillars ?? 1;
  const genesisJson: GenesisJson = {
    chainId: o.chainId ?? 'hybster-local',
    genesisTime: o.genesisTime ?? new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(),
    validators: keys.map((k, i) => ({
      name: names[i]!,
      publicKey: toHex(k.publicKey),
      peerId: peerIds[i]!,
      endpoints: { tcp: `127.0.0.1:${ports[i]!.tcp}`, libp2p: [`/ip4/127.0.0.1/tcp/${ports[i]!.libp2p}`] },
    })),
    consensus: { f, pillars, ...CONSENSUS_DEFAULTS, ...fittingDefaults(n, pillars), ...o.consensus },
    accounts: accounts.map((a) => ({ address: toHex(a.address), balance: a.balance.toString() })),
  };
  const parsed = parseGenesis(genesisJson);
  if (!parsed.ok) throw new TestnetError(`generated genesis is invalid: ${parsed.error.message}`);
  const genesisText = `${JSON.stringify(genesisToJson(parsed.value), null, 2)}\n`;

  const nodes: TestnetNode[] = [];
  for (let i = 0; i < n; i++) {
    const home = join(outDir, names[i]!);
    mkdirSync(join(home, 'keys'), { recursive: true, mode: 0o700 });
    chmodSync(join(home, 'keys'), 0o700);
    const config: GeneratedConfig = {
      validatorIndex: i,
      dataDir: 'data',
      genesisFile: 'genesis.json',
      keyFile: 'keys/validator.key',
      transport: { kind: 'tcp', listen: `127.0.0.1:${ports[i]!.tcp}` },
      api: { host: '127.0.0.1', port: ports[i]!.api },
      p2p: {
        listen: `/ip4/127.0.0.1/tcp/${ports[i]!.libp2p}`,
        bootstrap: ports
          .map((p, j) => (j === i ? null : `/ip4/127.0.0.1/tcp/${p.libp2p}/p2p/${peerIds[j]}`))
          .filter((x): x is string => x !== null),
      },
    };
    const configPath = join(home, 'config.json');
    const genesisPath = join(home, 'genesis.json');
    const keyPath = join(home, 'keys', 'validator.key');
    const libp2pKeyPath = join(home, 'keys', 'libp2p.key');
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    writeFileSync(genesisPath, genesisText);
    const k = keys[i]!;
    writeSecret(
      keyPath,
      `${JSON.stringify({ type: 'ed25519', publicKey: toHex(k.publicKey), secretKey: toHex(k.secretKey), peerId: peerIds[i] }, null, 2)}\n`,
    );
    writeSecret(join(home, 'keys', 'trinx.key'), trinxKeyHex);
    const lp = await generateKeyPairFromSeed('Ed25519', k.secretKey);
    writeSecret(libp2pKeyPath, Buffer.from(privateKeyToProtobuf(lp)).toString('base64'));
    nodes.push({
      index: i,
      name: names[i]!,
      home,
      configPath,
      genesisPath,
      keyPath,
      libp2pKeyPath,
      publicKeyHex: toHex(k.publicKey),
      peerId: peerIds[i]!,
      apiPort: ports[i]!.api,
      libp2pPort: ports[i]!.libp2p,
      tcpPort: ports[i]!.tcp,
    });
  }
  return {
    genesis: parsed.value,
    genesisJson: genesisToJson(parsed.value),
    genesisHashHex: toHex(genesisHash(parsed.value)),
    nodes,
  };
}
