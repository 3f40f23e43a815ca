// What the node needs from genesis, in the node's own types: chain id, hash, the
// validator set (keys, libp2p peer ids, transport endpoints), initial accounts and
// the consensus parameters. Built from genesis/'s validated document, so every other
// node module is independent of the genesis file's layout.
import { type ConsensusConfig, makeConfig } from '../consensus/index.js';
import { genesisHash, parseGenesisText } from '../genesis/genesis.js';

export interface ChainSpecValidator {
  id: number;
  name: string;
  publicKey: Uint8Array;
  peerId?: string;
  /** Transport endpoints by transport kind, e.g. { tcp: '127.0.0.1:26600' }. */
  endpoints: Record<string, string>;
  /** libp2p multiaddrs for discovery (without /p2p/<peerId>). */
  libp2p: string[];
}

export interface ChainSpec {
  chainId: string;
  hash: Uint8Array;
  /** The genesis document as loaded (served verbatim by the API). */
  document: unknown;
  validators: ChainSpecValidator[];
  accounts: { address: Uint8Array; balance: bigint }[];
  genesisTimeMs: bigint;
  consensus: ConsensusConfig;
  batchTxsMax: number;
  /** A tx held longer than this without being committed makes a follower suspect the leader. */
  requestTimeoutMs: number;
  /** How far a leader's batch time may run ahead of a follower's clock, ms (genesis consensus.timestampDriftMsMax). */
  timestampDriftMsMax: number;
  /** Key of the software TrInX, shared by the network's validators. */
  trinxKey: Uint8Array;
}

/**
 * The software TrInX needs one secret shared by the network's validators. It must not be
 * derivable from anything public (genesis is served by every API), or any validator could
 * mint certificates and equivocate. `hybster testnet` writes it to each home as
 * keys/trinx.key (mode 0600); it is read at start (node/start.ts). A hardware-backed
 * TrInX (SGX, SEV-SNP/TDX, TPM) keeps it sealed in the device instead.
 */
export function parseTrinxKey(bytes: Uint8Array, path: string): Uint8Array {
  const text = Buffer.from(bytes).toString('utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new ChainSpecError(`${path}: a TrInX key file holds 64 hex characters (32 bytes)`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export interface ConsensusParams {
  pillars: number;
  checkpointInterval?: number;
  window?: number;
  batchBytesMax?: number;
  batchTxsMax?: number;
  viewTimeoutMs?: number;
  requestTimeoutMs?: number;
  retransmitMs?: number;
}

export function consensusConfigFor(n: number, p: ConsensusParams): ConsensusConfig {
  return makeConfig({
    n,
    pillars: p.pillars,
    ...(p.checkpointInterval !== undefined ? { checkpointInterval: p.checkpointInterval } : {}),
    ...(p.window !== undefined ? { window: p.window } : {}),
    ...(p.batchBytesMax !== undefined ? { batchBytesMax: p.batchBytesMax } : {}),
    ...(p.viewTimeoutMs !== undefined
      ? { viewTimeoutMs: p.viewTimeoutMs, viewTimeoutMsMax: Math.max(p.viewTimeoutMs * 16, 16_000) }
      : {}),
    ...(p.retransmitMs !== undefined ? { retransmitMs: p.retransmitMs } : {}),
  });
}

// ---------------------------------------------------------------------------------
// Reading genesis and key files.

export class ChainSpecError extends Error {
  override readonly name = 'ChainSpecError';
}

/** Parses and validates genesis.json text (genesis/ owns the schema and the hash). */
export function loadChainSpec(text: string, path: string): ChainSpec {
  const r = parseGenesisText(text);
  if (!r.ok) {
    throw new ChainSpecError(
      `invalid genesis ${path}:\n  - ${r.error.issues.map((i) => `${i.field || '(root)'}: ${i.message}`).join('\n  - ')}`,
    );
  }
  const g = r.value;
  if (g.trinxKey !== undefined) {
    throw new ChainSpecError(
      `genesis ${path}: trinxKey must not be in genesis: genesis is public (every API serves it), so anyone ` +
        'could forge TrInX certificates. Remove it and give each validator the key as keys/trinx.key (mode 0600).',
    );
  }
  const hash = genesisHash(g);
  const c = g.consensus;
  let consensus: ConsensusConfig;
  try {
    consensus = consensusConfigFor(g.validators.length, {
      pillars: c.pillars,
      checkpointInterval: c.checkpointInterval,
      window: c.window,
      batchBytesMax: c.batchBytesMax,
      viewTimeoutMs: c.viewChangeTimeoutMs,
    });
  } catch (e) {
    throw new ChainSpecError(`genesis ${path}: consensus parameters: ${(e as Error).message}`);
  }
  return {
    chainId: g.chainId,
    hash,
    document: JSON.parse(text) as unknown,
    validators: g.validators.map((v, id) => ({
      id,
      name: v.name,
      publicKey: v.publicKey,
      peerId: v.peerId,
      endpoints: { tcp: v.endpoints.tcp, ...(v.endpoints.rdma ? { rdma: v.endpoints.rdma } : {}) },
      libp2p: v.endpoints.libp2p,
    })),
    accounts: g.accounts,
    genesisTimeMs: g.genesisTimeMs,
    consensus,
    batchTxsMax: c.batchTxsMax,
    requestTimeoutMs: c.requestTimeoutMs,
    timestampDriftMsMax: c.timestampDriftMsMax,
    // Filled from keys/trinx.key by the caller that runs consensus (node/start.ts).
    trinxKey: new Uint8Array(0),
  };
}

/**
 * A validator key file holds the 32-byte Ed25519 seed: as hex (optionally with the
 * public key after it), or as JSON with a `secretKey`/`seed`/`privateKey` hex field.
 */
export function parseValidatorKey(bytes: Uint8Array, path: string): Uint8Array {
  const text = new TextDecoder().decode(bytes).trim();
  let candidate = text;
  if (text.startsWith('{')) {
    try {
      const o = JSON.parse(text) as Record<string, unknown>;
      const v = o.secretKey ?? o.seed ?? o.privateKey;
      if (typeof v === 'string') candidate = v;
    } catch {
      throw new ChainSpecError(`key file ${path} is not valid JSON`);
    }
  }
  if (/^[0-9a-fA-F]{64}([0-9a-fA-F]{64})?$/.test(candidate)) {
    return new Uint8Array(Buffer.from(candidate.slice(0, 64), 'hex'));
  }
  throw new ChainSpecError(`key file ${path} does not hold a 32-byte Ed25519 seed (hex or JSON secretKey)`);
}
