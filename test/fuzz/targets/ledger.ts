// Ledger decoders: transactions (binary and the REST API's JSON form), batches (what a
// possibly faulty leader orders), block headers, blocks (what state transfer receives
// from peers) and commit certificates.
import fc from 'fast-check';
import { type Batch, decodeBatch, encodeBatch } from '../../../ledger/batch.js';
import {
  BLOCK_BYTES_MAX,
  type Block,
  type BlockHeader,
  COMMIT_SIGNATURES_MAX,
  type CommitCertificate,
  decodeBlock,
  decodeCommitCertificate,
  decodeHeader,
  encodeBlock,
  encodeCommitCertificate,
  encodeHeader,
  RESULT_CODES,
  type TxFailureCode,
  type TxResult,
} from '../../../ledger/block.js';
import {
  decodeTx,
  encodeTx,
  type SignedTx,
  TX_BYTES_MAX,
  type TxPayload,
  txFromJson,
  txToJson,
} from '../../../ledger/tx.js';
import { decoderTarget, type FuzzTarget, FuzzViolation, isTypedError, type Outcome } from '../harness.js';
import { hostileInputs } from '../mutate.js';

const U64_MAX = (1n << 64n) - 1n;
const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
// Mostly small values, some at the edges, as real chains and attackers would use.
const u64Edgy = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.constantFrom(0n, U64_MAX, 1n << 63n), u64);
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const bytes64 = fc.uint8Array({ minLength: 64, maxLength: 64 });
const chainId = fc.string({ minLength: 1, maxLength: 16 });
const kvKey = fc.uint8Array({ minLength: 1, maxLength: 48 });
const kvValue = fc.uint8Array({ maxLength: 96 });

const payload: fc.Arbitrary<TxPayload> = fc.oneof(
  fc.record({ type: fc.constant('transfer' as const), to: bytes32, amount: u64Edgy }),
  fc.record({ type: fc.constant('kv.put' as const), key: kvKey, value: kvValue }),
  fc.record({ type: fc.constant('kv.delete' as const), key: kvKey }),
  fc.record({ type: fc.constant('kv.cas' as const), key: kvKey, expectedVersion: u64Edgy, value: kvValue }),
);

export const signedTxArb: fc.Arbitrary<SignedTx> = fc.record({
  chainId,
  from: bytes32,
  nonce: u64Edgy,
  payload,
  signature: bytes64,
});
const encodedTx = signedTxArb.map(encodeTx);

const batchArb: fc.Arbitrary<Batch> = fc.record({
  timestampMs: u64Edgy,
  txs: fc.array(encodedTx, { maxLength: 6 }),
});

const FAILURE_CODES = Object.keys(RESULT_CODES).filter((c) => c !== 'ok') as TxFailureCode[];
const txResult: fc.Arbitrary<TxResult> = fc.oneof(
  fc.constant({ ok: true } as const),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constantFrom(...FAILURE_CODES),
    message: fc.string({ maxLength: 40 }),
  }),
);

const headerArb = (txCount: number): fc.Arbitrary<BlockHeader> =>
  fc.record({
    chainId,
    height: u64Edgy,
    prevHash: bytes32,
    txRoot: bytes32,
    resultsHash: bytes32,
    stateDigest: bytes32,
    timestampMs: u64Edgy,
    view: u64Edgy,
    order: u64Edgy,
    proposer: fc.nat({ max: 0xffffffff }),
    txCount: fc.constant(txCount),
  });

const certArb: fc.Arbitrary<CommitCertificate> = fc.record({
  height: u64Edgy,
  blockHash: bytes32,
  signatures: fc.array(fc.record({ validator: fc.nat({ max: 0xffffffff }), signature: bytes64 }), {
    maxLength: 5,
  }),
});

const blockArb: fc.Arbitrary<Block> = fc.nat({ max: 4 }).chain((n) =>
  fc.record({
    header: headerArb(n),
    txs: fc.array(encodedTx, { minLength: n, maxLength: n }),
    results: fc.array(txResult, { minLength: n, maxLength: n }),
    parentCommit: fc.option(certArb, { nil: null }),
  }),
);

// The JSON form arrives from REST clients: a JSON text, parsed, then validated by zod.
function txJsonTarget(): FuzzTarget {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const valid = signedTxArb.map((tx) => enc.encode(JSON.stringify(txToJson(tx))));
  const run = (bytes: Uint8Array): Outcome => {
    let doc: unknown;
    try {
      doc = JSON.parse(dec.decode(bytes));
    } catch {
      return 'rejected'; // Not JSON: Fastify's parser refuses it before txFromJson sees it.
    }
    let res: ReturnType<typeof txFromJson>;
    try {
      res = txFromJson(doc);
    } catch (e) {
      throw new FuzzViolation('threw', `txFromJson threw ${String(e)} on ${dec.decode(bytes).slice(0, 200)}`);
    }
    if (!res.ok) {
      if (!isTypedError(res.error)) throw new FuzzViolation('untyped-error', String(res.error));
      return 'rejected';
    }
    // Accepted JSON must describe a tx the binary codec agrees with (or refuses with a typed
    // error when the whole tx exceeds its size limit), and must survive JSON -> tx -> JSON.
    let encoded: Uint8Array;
    try {
      encoded = encodeTx(res.value);
    } catch (e) {
      if (e instanceof RangeError) return 'rejected';
      throw new FuzzViolation('threw', `encodeTx threw ${String(e)} on accepted JSON`);
    }
    const back = decodeTx(encoded);
    if (!back.ok) throw new FuzzViolation('round-trip', `accepted JSON encodes to bytes decodeTx refuses`);
    const again = txFromJson(JSON.parse(JSON.stringify(txToJson(back.value))));
    if (!again.ok || Buffer.compare(encodeTx(again.value), encoded) !== 0) {
      throw new FuzzViolation('round-trip', 'JSON -> tx -> JSON -> tx changed the tx');
    }
    return 'accepted';
  };
  return { name: 'ledger.tx-json', valid, inputs: hostileInputs(valid, 512), run, oversized: () => null };
}

export const ledgerTargets: FuzzTarget[] = [
  decoderTarget({
    name: 'ledger.tx',
    valid: encodedTx,
    inputBytesMax: TX_BYTES_MAX,
    decode: decodeTx,
    encode: encodeTx,
  }),
  txJsonTarget(),
  decoderTarget({
    name: 'ledger.batch',
    valid: batchArb.map(encodeBatch),
    inputBytesMax: 64 * 1024,
    decode: (b) => decodeBatch(b, { txsMax: 16, bytesMax: 64 * 1024 }),
    encode: encodeBatch,
  }),
  decoderTarget({
    name: 'ledger.block-header',
    valid: headerArb(3).map(encodeHeader),
    inputBytesMax: 1024,
    decode: decodeHeader,
    encode: encodeHeader,
  }),
  decoderTarget({
    name: 'ledger.block',
    valid: blockArb.map(encodeBlock),
    inputBytesMax: BLOCK_BYTES_MAX,
    decode: decodeBlock,
    encode: encodeBlock,
  }),
  decoderTarget({
    name: 'ledger.commit-certificate',
    valid: certArb.map(encodeCommitCertificate),
    inputBytesMax: 48 + COMMIT_SIGNATURES_MAX * 68,
    decode: decodeCommitCertificate,
    encode: encodeCommitCertificate,
  }),
];
