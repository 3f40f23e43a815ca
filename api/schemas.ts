// Zod schemas for every request and response of the REST API. They are the single
// source for three things: request validation in the server, the OpenAPI document
// (/openapi.json, /docs), and the types of the client in api/client.ts.
//
// JSON conventions: byte strings are lowercase hex without 0x (inputs accept 0x and
// either case); u64 quantities that can exceed 2^53 (balances, amounts, nonces, kv
// versions) are decimal strings; heights, views, order numbers and timestamps are
// JSON numbers (they stay far below 2^53).
import { z } from 'zod';
import { TxJsonSchema } from '../ledger/tx.js';
import { API_ERROR_CODES } from './errors.js';

const hexRe = /^(0x)?([0-9a-fA-F]{2})*$/;

/** Any even-length hex string (0x prefix optional). */
export const Hex = z
  .string()
  .max(1 << 20)
  .regex(hexRe, 'must be hex (an even number of 0-9a-f digits)');
export const Hash32 = z
  .string()
  .regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be 32 bytes as 64 hex digits')
  .describe('32 bytes, hex');
export const Signature64 = z
  .string()
  .regex(/^(0x)?[0-9a-fA-F]{128}$/, 'must be 64 bytes as 128 hex digits')
  .describe('Ed25519 signature, 64 bytes, hex');
export const Address = Hash32.describe('account address: the 32-byte Ed25519 public key, hex');
/** Decimal string of an unsigned 64-bit integer. */
export const U64String = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,19})$/, 'must be a decimal unsigned integer')
  .refine((s) => /^(0|[1-9][0-9]{0,19})$/.test(s) && BigInt(s) < 1n << 64n, 'must fit in 64 bits')
  .describe('unsigned 64-bit integer as a decimal string');

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(API_ERROR_CODES),
      message: z.string(),
      field: z.string().optional(),
    }),
  })
  .describe('Typed error: switch on error.code; error.field names the failing field when there is one');

// ---------------------------------------------------------------------------
// Transactions

/** A signed transaction as JSON (ledger/tx.ts TxJsonSchema): hex byte fields, u64 as decimal strings. */
export const TxJson = TxJsonSchema.describe(
  'A signed transaction as JSON; signing bytes: README "Transaction encoding"',
);

/** The same shape for responses, without the input checks (the server produced it from decoded bytes). */
export const TxJsonOut = z.object({
  chainId: z.string(),
  from: z.string(),
  nonce: z.string(),
  payload: z.object({
    type: z.enum(['transfer', 'kv.put', 'kv.delete', 'kv.cas']),
    to: z.string().optional(),
    amount: z.string().optional(),
    key: z.string().optional(),
    value: z.string().optional(),
    expectedVersion: z.string().optional(),
  }),
  signature: z.string(),
});

export const SubmitTxBody = z
  .object({
    tx: z
      .union([
        z
          .string()
          .min(2)
          .max(4 << 20),
        TxJson,
      ])
      .describe(
        'The canonical encoded signed tx (hex, or base64 with encoding: "base64"), or the tx as JSON',
      ),
    encoding: z.enum(['hex', 'base64']).default('hex').describe('How `tx` is written when it is a string'),
    mode: z
      .enum(['async', 'commit'])
      .default('async')
      .describe('async: return once accepted into the mempool; commit: wait until it is in a block'),
    timeoutMs: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('commit mode: how long to wait before answering 202 pending'),
  })
  .strict();

export const SubmitTxsBody = z
  .object({
    txs: z
      .array(
        z
          .union([z.string(), z.record(z.string(), z.unknown())])
          .describe('A tx as in POST /v1/txs: encoded (hex, or base64 with encoding: "base64") or as JSON'),
      )
      .min(1)
      .describe(
        "The txs, checked in order; at most the server's batch limit (413 above it). A tx that " +
          'does not parse is refused on its own, as an item error',
      ),
    encoding: z.enum(['hex', 'base64']).default('hex').describe('How the string items are written'),
    mode: z
      .enum(['async'])
      .default('async')
      .describe('async only: each tx is answered once it is checked and accepted into the mempool'),
  })
  .strict();

export const TxResultJson = z
  .object({ ok: z.boolean(), code: z.string().optional(), message: z.string().optional() })
  .describe('Execution result: ok, or a typed failure code');

export const CommitSignatureJson = z.object({ validator: z.number().int(), signature: z.string() });
export const CommitCertificateJson = z
  .object({
    height: z.number().int(),
    blockHash: z.string(),
    signatures: z.array(CommitSignatureJson),
    verified: z.boolean().describe('f+1 distinct valid validator signatures over blockHash'),
  })
  .describe('Commit certificate: f+1 validator signatures over the block hash');

export const TxLocationJson = z.object({
  height: z.number().int(),
  index: z.number().int(),
  blockHash: z.string(),
});

export const MerkleProofJson = z
  .object({
    root: z.string(),
    leaf: z.string().describe('the tx hash'),
    index: z.number().int(),
    leafCount: z.number().int(),
    siblings: z.array(z.string()).describe('sibling hashes from the leaf up to the root'),
  })
  .describe('Inclusion proof of the tx hash in the block header txRoot; see README "Merkle tree"');

export const SubmitTxResponse = z.object({
  hash: z.string(),
  status: z.enum(['pending', 'committed']),
  /** true when the same tx had been submitted before: this is its current status, not a new execution. */
  duplicate: z.boolean(),
  location: TxLocationJson.optional(),
  result: TxResultJson.optional(),
  commit: CommitCertificateJson.nullable().optional(),
});

/** One tx of a batch that was taken (or had been before: idempotent). */
export const SubmitTxsAccepted = z.object({
  hash: z.string(),
  status: z
    .enum(['accepted', 'known', 'committed'])
    .describe(
      'accepted: entered the mempool now; known: already pending; committed: already in a block (location, result)',
    ),
  location: TxLocationJson.optional(),
  result: TxResultJson.optional(),
});

export const SubmitTxsResponse = z.object({
  results: z
    .array(z.union([SubmitTxsAccepted, ErrorBody]))
    .describe('One per submitted tx, in order: a status, or the typed error POST /v1/txs would answer'),
  retryAfterMs: z
    .number()
    .int()
    .optional()
    .describe('Set (and the Retry-After header) when some txs were refused as mempool-full or unavailable'),
});

export const TxResponse = z.object({
  hash: z.string(),
  status: z.enum(['pending', 'committed', 'unknown']),
  tx: TxJsonOut.optional(),
  encoded: z.string().optional().describe('canonical encoded signed tx, hex'),
  location: TxLocationJson.optional(),
  result: TxResultJson.optional(),
  proof: MerkleProofJson.optional(),
});

// ---------------------------------------------------------------------------
// Blocks

export const BlockHeaderJson = z.object({
  height: z.number().int(),
  hash: z.string(),
  prevHash: z.string(),
  txRoot: z.string(),
  resultsHash: z.string(),
  stateDigest: z.string(),
  timestampMs: z.number().int(),
  time: z.string().describe('timestampMs as ISO 8601'),
  view: z.number().int(),
  order: z.number().int(),
  proposer: z.number().int(),
  txCount: z.number().int(),
});

export const BlockTxJson = z.object({
  hash: z.string(),
  index: z.number().int(),
  tx: TxJsonOut.nullable().describe('null if the committed bytes do not decode (recorded as failed)'),
  result: TxResultJson,
});

export const BlockResponse = z.object({
  header: BlockHeaderJson,
  txs: z.array(BlockTxJson),
  commit: CommitCertificateJson.nullable().describe("this block's certificate (null until collected)"),
  parentCommit: CommitCertificateJson.nullable(),
});

export const BlockListResponse = z.object({
  blocks: z.array(BlockHeaderJson),
  next: z.number().int().nullable().describe('pass as ?before= for the next (older) page; null at the end'),
});

export const HeightParam = z.object({
  height: z.string().regex(/^(0|[1-9][0-9]{0,15})$/, 'must be a block height (decimal)'),
});
export const HashParam = z.object({ hash: Hash32 });
export const PageQuery = z
  .object({
    before: z
      .string()
      .regex(/^[0-9]{1,16}$/)
      .optional()
      .describe('only blocks strictly below this height'),
    limit: z.coerce.number().int().min(1).max(1000).default(20),
  })
  .strict();

// ---------------------------------------------------------------------------
// Accounts and key-value

export const AddressParam = z.object({ address: Address });
export const AccountResponse = z.object({
  address: z.string(),
  balance: z.string(),
  nonce: z.string().describe('nonce of the last committed tx from this account (0: none yet)'),
  nextNonce: z.string(),
});

export const AccountTxJson = z.object({
  hash: z.string(),
  height: z.number().int(),
  index: z.number().int(),
  tx: TxJsonOut.nullable(),
  result: TxResultJson,
});
export const AccountTxsQuery = z
  .object({
    cursor: z
      .string()
      .regex(/^[0-9]{1,16}:[0-9]{1,9}$/, 'must be a cursor from a previous page')
      .optional()
      .describe('opaque cursor (`next` of the previous page)'),
    limit: z.coerce.number().int().min(1).max(1000).default(20),
  })
  .strict();
export const AccountTxsResponse = z.object({
  address: z.string(),
  txs: z.array(AccountTxJson),
  next: z.string().nullable(),
});

export const KvKeyParam = z.object({ key: Hex.min(2).describe('key bytes, hex') });
export const KvEntryJson = z.object({
  key: z.string(),
  keyUtf8: z.string().nullable(),
  value: z.string(),
  valueUtf8: z.string().nullable().describe('the value as text when it is valid printable UTF-8'),
  version: z.string(),
  lastModifiedHeight: z.number().int(),
  lastModifiedBy: z.string().describe('address of the tx sender that wrote this version'),
});
export const KvHistoryEntryJson = z.object({
  version: z.string(),
  height: z.number().int(),
  by: z.string().describe('address of the tx sender that wrote this version'),
  value: z.string().nullable().describe('null: deleted at this version'),
  valueUtf8: z.string().nullable(),
});
export const KvHistoryQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(1000).default(20) })
  .strict();
export const KvHistoryResponse = z.object({ key: z.string(), entries: z.array(KvHistoryEntryJson) });
export const KvListQuery = z
  .object({
    prefix: Hex.default('').describe('key prefix, hex (empty: all keys)'),
    after: Hex.optional().describe('cursor: only keys strictly after this key'),
    limit: z.coerce.number().int().min(1).max(1000).default(20),
  })
  .strict();
export const KvListResponse = z.object({ entries: z.array(KvEntryJson), next: z.string().nullable() });

// ---------------------------------------------------------------------------
// Node

export const PeerJson = z.object({
  id: z.number().int(),
  name: z.string(),
  connected: z.boolean(),
  endpoint: z.string().optional(),
});
export const StatusResponse = z.object({
  chainId: z.string(),
  genesisHash: z.string(),
  height: z.number().int(),
  latestBlockHash: z.string().nullable(),
  latestBlockTime: z.string().nullable(),
  latestBlockTimeMs: z.number().int().nullable(),
  view: z.number().int(),
  leader: z.number().int(),
  leaderName: z.string().nullable(),
  selfId: z.number().int(),
  selfName: z.string().nullable(),
  validatorCount: z.number().int(),
  f: z.number().int(),
  peers: z.array(PeerJson),
  syncing: z.boolean(),
  ready: z.boolean(),
  mempool: z.object({ txs: z.number().int(), bytes: z.number().int() }),
  commitLatency: z.object({ p50Ms: z.number(), p99Ms: z.number(), count: z.number().int() }).nullable(),
});
export const HealthResponse = z.object({ ok: z.literal(true) });
export const ReadyResponse = z.object({ ready: z.literal(true) });
export const ValidatorJson = z.object({
  id: z.number().int(),
  name: z.string(),
  publicKey: z.string(),
  peerId: z.string().optional(),
  endpoints: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  connected: z.boolean().nullable().describe('null for this validator itself'),
});
export const ValidatorsResponse = z.object({
  f: z.number().int(),
  leader: z.number().int(),
  validators: z.array(ValidatorJson),
});
export const StreamBlocksQuery = z
  .object({ account: Address.optional().describe('also send `tx` events for txs from or to this account') })
  .strict();

export type TxJsonT = z.output<typeof TxJson>;
export type TxJsonOutT = z.output<typeof TxJsonOut>;
export type BlockHeaderJsonT = z.output<typeof BlockHeaderJson>;
export type BlockResponseT = z.output<typeof BlockResponse>;
export type StatusResponseT = z.output<typeof StatusResponse>;
export type TxResponseT = z.output<typeof TxResponse>;
export type SubmitTxResponseT = z.output<typeof SubmitTxResponse>;
export type SubmitTxsResponseT = z.output<typeof SubmitTxsResponse>;
export type AccountTxJsonT = z.output<typeof AccountTxJson>;
