// The genesis document: schema (zod, with errors that name the field and say why), the
// parsed form the node uses, and the genesis hash over a canonical binary encoding.
//
// What the hash covers: chain id, genesis time, each validator's name and public key (in
// order: the order defines validator ids), the consensus parameters, and the initial
// accounts (sorted by address, so their order in the file does not matter). It does NOT
// cover transport endpoints or peer ids (derived from the key): moving a validator to a new
// address does not create a new chain. JSON key order and whitespace never matter.

import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import { z } from 'zod';
import { err, fromHex, ok, type Result, toHex, Writer } from '../ledger/codec/binary.js';
import { sha256 } from '../ledger/keys.js';
import { CHAIN_ID_BYTES_MAX, TX_BYTES_MAX, U64_MAX } from '../ledger/tx.js';

export const GENESIS_HASH_DOMAIN = new TextEncoder().encode('hybster/genesis/v1');
export const VALIDATORS_MAX = 1023;
export const GENESIS_ACCOUNTS_MAX = 1_000_000;

const hex32 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex chars');
const u64String = z
  .string()
  .regex(/^(0|[1-9][0-9]*)$/, 'must be a decimal integer string')
  .refine((s) => s.length <= 20 && BigInt(s) <= U64_MAX, { message: 'exceeds u64' });
const hostPort = z
  .string()
  .max(256)
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'must be host:port')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, { message: 'port must be <= 65535' });
const int = (min: number, max: number) => z.number().int('must be an integer').min(min).max(max);

export const GenesisValidatorSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 chars of letters, digits, _ . -'),
  publicKey: hex32,
  /** libp2p peer id derived from publicKey; checked. */
  peerId: z.string().min(1).max(128),
  endpoints: z.strictObject({
    /** Replica transport over TCP: host:port. */
    tcp: hostPort,
    /** Replica transport over libfabric, e.g. "rdma+verbs;ofi_rxm://10.0.0.1:9000". */
    rdma: z.string().min(1).max(256).optional(),
    /** libp2p multiaddrs for discovery (without /p2p/<peerId>). */
    libp2p: z
      .array(z.string().regex(/^\//, 'must be a multiaddr starting with /').max(256))
      .max(16)
      .default([]),
  }),
});

export const ConsensusParamsSchema = z.strictObject({
  /** Faults tolerated; n = 2f + 1 validators. */
  f: int(0, 511),
  /** Parallel ordering instances. */
  pillars: int(1, 64),
  batchTxsMax: int(1, 100_000),
  batchBytesMax: int(TX_BYTES_MAX + 64, 64 * 1024 * 1024),
  /** K: a checkpoint after every K order numbers. */
  checkpointInterval: int(1, 1_000_000),
  /** W: a leader may not propose o >= lowWatermark + W. */
  window: int(1, 10_000_000),
  requestTimeoutMs: int(10, 3_600_000),
  viewChangeTimeoutMs: int(10, 3_600_000),
  /** Largest amount a leader's timestamp may run ahead of a follower's clock. */
  timestampDriftMsMax: int(0, 3_600_000).default(30_000),
  /** Optional resend period for unanswered consensus messages; the node's default when absent. */
  retransmitMs: int(1, 600_000).optional(),
});

export const GenesisSchema = z
  .strictObject({
    chainId: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
        'must be letters, digits, _ . - (starting with a letter or digit)',
      )
      .max(CHAIN_ID_BYTES_MAX, `must be at most ${CHAIN_ID_BYTES_MAX} chars`),
    /** RFC 3339 UTC time, e.g. 2026-01-01T00:00:00.000Z. */
    genesisTime: z.iso.datetime({ message: 'must be an RFC 3339 UTC time like 2026-01-01T00:00:00Z' }),
    validators: z
      .array(GenesisValidatorSchema)
      .min(1, 'must list at least one validator')
      .max(VALIDATORS_MAX),
    consensus: ConsensusParamsSchema,
    accounts: z
      .array(z.strictObject({ address: hex32, balance: u64String }))
      .max(GENESIS_ACCOUNTS_MAX)
      .default([]),
    /** Optional shared key of the software TrInX (hex, 32 bytes); see the README threat model. */
    trinxKey: hex32.optional(),
  })
  .superRefine((g, ctx) => {
    const n = g.validators.length;
    if (n !== 2 * g.consensus.f + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['validators'],
        message: `has ${n} entries but consensus.f = ${g.consensus.f} needs n = 2f + 1 = ${2 * g.consensus.f + 1}`,
      });
    }
    if (g.consensus.window < g.consensus.checkpointInterval) {
      ctx.addIssue({
        code: 'custom',
        path: ['consensus', 'window'],
        message: `must be >= checkpointInterval (${g.consensus.checkpointInterval}) or ordering stalls`,
      });
    }
    const seen = {
      name: new Map<string, number>(),
      key: new Map<string, number>(),
      tcp: new Map<string, number>(),
    };
    g.validators.forEach((v, i) => {
      for (const [kind, value, field] of [
        ['name', v.name, 'name'],
        ['key', v.publicKey.toLowerCase(), 'publicKey'],
        ['tcp', v.endpoints.tcp, 'endpoints.tcp'],
      ] as const) {
        const first = seen[kind].get(value);
        if (first !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['validators', i, ...field.split('.')],
            message: `duplicates validators[${first}].${field}`,
          });
        } else seen[kind].set(value, i);
      }
      // Refinements run even when a field already failed its own check; skip what cannot be read.
      if (!/^[0-9a-fA-F]{64}$/.test(v.publicKey)) return;
      const expected = peerIdFor(fromHex(v.publicKey));
      if (expected === null) {
        ctx.addIssue({
          code: 'custom',
          path: ['validators', i, 'publicKey'],
          message: 'is not an Ed25519 public key',
        });
      } else if (v.peerId !== expected) {
        ctx.addIssue({
          code: 'custom',
          path: ['validators', i, 'peerId'],
          message: `does not match publicKey (expected ${expected})`,
        });
      }
    });
    const addrs = new Map<string, number>();
    let total = 0n;
    g.accounts.forEach((a, i) => {
      const k = a.address.toLowerCase();
      const first = addrs.get(k);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['accounts', i, 'address'],
          message: `duplicates accounts[${first}].address`,
        });
      } else addrs.set(k, i);
      if (/^(0|[1-9][0-9]{0,19})$/.test(a.balance)) total += BigInt(a.balance);
    });
    if (total > U64_MAX) {
      ctx.addIssue({ code: 'custom', path: ['accounts'], message: 'total balance exceeds u64 (2^64 - 1)' });
    }
  });

export type GenesisJson = z.input<typeof GenesisSchema>;

export interface GenesisValidator {
  name: string;
  publicKey: Uint8Array;
  peerId: string;
  endpoints: { tcp: string; rdma?: string; libp2p: string[] };
}
export type ConsensusParams = z.output<typeof ConsensusParamsSchema>;

export interface Genesis {
  chainId: string;
  genesisTime: string;
  genesisTimeMs: bigint;
  validators: GenesisValidator[];
  consensus: ConsensusParams;
  accounts: { address: Uint8Array; balance: bigint }[];
  trinxKey?: Uint8Array;
}

export interface GenesisIssue {
  /** e.g. "validators[1].publicKey" */
  field: string;
  message: string;
}
export class GenesisError extends Error {
  override readonly name = 'GenesisError';
  constructor(readonly issues: GenesisIssue[]) {
    super(issues.map((i) => `${i.field || '(root)'}: ${i.message}`).join('; '));
  }
}

/** libp2p peer id (base58 string) of an Ed25519 public key, or null if the key is invalid. */
export function peerIdFor(publicKey: Uint8Array): string | null {
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(publicKey) as never).toString();
  } catch {
    return null;
  }
}

/** ["validators", 1, "publicKey"] -> "validators[1].publicKey" */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** Validates a parsed JSON document. Never throws; every issue names its field. */
export function parseGenesis(json: unknown): Result<Genesis, GenesisError> {
  const r = GenesisSchema.safeParse(json);
  if (!r.success) {
    return err(
      new GenesisError(r.error.issues.map((i) => ({ field: formatPath(i.path), message: i.message }))),
    );
  }
  const g = r.data;
  return ok({
    chainId: g.chainId,
    genesisTime: g.genesisTime,
    genesisTimeMs: BigInt(Date.parse(g.genesisTime)),
    validators: g.validators.map((v) => ({
      name: v.name,
      publicKey: fromHex(v.publicKey),
      peerId: v.peerId,
      endpoints: {
        tcp: v.endpoints.tcp,
        ...(v.endpoints.rdma !== undefined ? { rdma: v.endpoints.rdma } : {}),
        libp2p: v.endpoints.libp2p,
      },
    })),
    consensus: g.consensus,
    accounts: g.accounts.map((a) => ({ address: fromHex(a.address), balance: BigInt(a.balance) })),
    ...(g.trinxKey !== undefined ? { trinxKey: fromHex(g.trinxKey) } : {}),
  });
}

/** Parses genesis.json text; a JSON syntax error is reported as an issue at the root. */
export function parseGenesisText(text: string): Result<Genesis, GenesisError> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return err(new GenesisError([{ field: '', message: `not JSON: ${(e as Error).message}` }]));
  }
  return parseGenesis(json);
}

export function genesisToJson(g: Genesis): GenesisJson {
  return {
    chainId: g.chainId,
    genesisTime: g.genesisTime,
    validators: g.validators.map((v) => ({
      name: v.name,
      publicKey: toHex(v.publicKey),
      peerId: v.peerId,
      endpoints: { ...v.endpoints, libp2p: [...v.endpoints.libp2p] },
    })),
    consensus: { ...g.consensus },
    accounts: g.accounts.map((a) => ({ address: toHex(a.address), balance: a.balance.toString() })),
    ...(g.trinxKey !== undefined ? { trinxKey: toHex(g.trinxKey) } : {}),
  };
}

/** The canonical bytes the genesis hash covers (layout in docs/ledger.md). */
export function encodeGenesisCanonical(g: Genesis): Uint8Array {
  const w = new Writer(512 + g.accounts.length * 40);
  w.raw(GENESIS_HASH_DOMAIN).string(g.chainId).u64(g.genesisTimeMs).u32(g.validators.length);
  for (const v of g.validators) w.string(v.name).raw(v.publicKey);
  const c = g.consensus;
  w.u32(c.f).u32(c.pillars).u32(c.batchTxsMax).u32(c.batchBytesMax).u32(c.checkpointInterval).u32(c.window);
  w.u32(c.requestTimeoutMs)
    .u32(c.viewChangeTimeoutMs)
    .u32(c.timestampDriftMsMax)
    .u32(c.retransmitMs ?? 0);
  const accounts = [...g.accounts].sort((a, b) => Buffer.compare(a.address, b.address));
  w.u32(accounts.length);
  for (const a of accounts) w.raw(a.address).u64(a.balance);
  if (g.trinxKey === undefined) w.u8(0);
  else w.u8(1).raw(g.trinxKey);
  return w.finish();
}

export const genesisHash = (g: Genesis): Uint8Array => sha256(encodeGenesisCanonical(g));
