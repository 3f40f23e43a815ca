// What the node needs from genesis, in the node's own types: chain id, hash, the
// validator set (keys, libp2p peer ids, transport endpoints), initial accounts and
// the consensus parameters. Built from genesis/'s validated document, so every other
// node module is independent of the genesis file's layout.
import { type ConsensusConfig, makeConfig } from '../consensus/index.js';
import { z } from 'zod';
import { sha256Parts } from '../ledger/keys.js';

export interface ChainSpecValidator {
  id: number;
  name: string;
  publicKey: Uint8Array;
  peerId?: string;
  /** Transport endpoints by transport kind, e.g. { tcp: '127.0.0.1:26600' }. */
  endpoints: Record<string, string>;
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
  /** Key of the software TrInX, shared by the network's validators. */
  trinxKey: Uint8Array;
}

/**
 * The software TrInX needs one secret shared by all validators. Genesis may carry one;
 * otherwise it is derived from the genesis hash. Either way anyone holding genesis (or
 * a validator's disk) can compute it: software TrInX protects against faulty replica
 * logic, not against a malicious host (README threat model); SGX/TPM-backed TrInX
 * implementations keep the key sealed instead.
 */
export function deriveTrinxKey(genesisHash: Uint8Array): Uint8Array {
  return sha256Parts(new TextEncoder().encode('hybster/trinx/software/v1'), genesisHash);
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


const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `expected ${bytes} bytes of hex`);

/** The genesis layout this node reads (genesis/ validates the same document). */
const genesisDoc = z.object({
  chainId: z.string().min(1).max(64),
  genesisTimeMs: z.union([z.string().regex(/^\d+$/), z.number().int().min(0)]).optional(),
  validators: z
    .array(
      z.object({
        name: z.string().min(1).max(64),
        publicKey: hex(32),
        peerId: z.string().optional(),
        endpoints: z.record(z.string(), z.string()).default({}),
      }),
    )
    .min(1)
    .max(1023),
  accounts: z.array(z.object({ address: hex(32), balance: z.union([z.string().regex(/^\d+$/), z.number().int()]) })).default([]),
  consensus: z
    .object({
      pillars: z.number().int().min(1).max(64).default(1),
      checkpointInterval: z.number().int().min(1).optional(),
      window: z.number().int().min(2).optional(),
      batchTxsMax: z.number().int().min(1).max(100_000).default(2000),
      batchBytesMax: z.number().int().min(1024).optional(),
      viewTimeoutMs: z.number().int().min(10).optional(),
      requestTimeoutMs: z.number().int().min(10).default(2000),
      retransmitMs: z.number().int().min(1).optional(),
    })
    .prefault({}),
  trinxKey: hex(32).optional(),
});

export class GenesisError extends Error {
  override readonly name = 'GenesisError';
}

export function loadChainSpec(text: string, path: string): ChainSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GenesisError(`${path} is not JSON: ${(e as Error).message}`);
  }
  const r = genesisDoc.safeParse(raw);
  if (!r.success) {
    throw new GenesisError(
      `invalid genesis ${path}:\n  - ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  - ')}`,
    );
  }
  const g = r.data;
  const hash = sha256Parts(new TextEncoder().encode(text));
  const n = g.validators.length;
  if (n % 2 !== 1) throw new GenesisError(`genesis has ${n} validators; Hybster needs n = 2f + 1 (odd)`);
  return {
    chainId: g.chainId,
    hash,
    document: raw,
    validators: g.validators.map((v, id) => ({
      id,
      name: v.name,
      publicKey: new Uint8Array(Buffer.from(v.publicKey, 'hex')),
      ...(v.peerId ? { peerId: v.peerId } : {}),
      endpoints: v.endpoints,
    })),
    accounts: g.accounts.map((a) => ({ address: new Uint8Array(Buffer.from(a.address, 'hex')), balance: BigInt(a.balance) })),
    genesisTimeMs: BigInt(g.genesisTimeMs ?? 0),
    consensus: consensusConfigFor(n, g.consensus),
    batchTxsMax: g.consensus.batchTxsMax,
    requestTimeoutMs: g.consensus.requestTimeoutMs,
    trinxKey: g.trinxKey ? new Uint8Array(Buffer.from(g.trinxKey, 'hex')) : deriveTrinxKey(hash),
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
      throw new GenesisError(`key file ${path} is not valid JSON`);
    }
  }
  if (/^[0-9a-fA-F]{64}([0-9a-fA-F]{64})?$/.test(candidate)) {
    return new Uint8Array(Buffer.from(candidate.slice(0, 64), 'hex'));
  }
  throw new GenesisError(`key file ${path} does not hold a 32-byte Ed25519 seed (hex or JSON secretKey)`);
}
