import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { Counter, encodeMessage, makeConfig, SoftwareTrinx } from '../../consensus/index.js';
import { encodeBatch, peekBatchTimestamp } from '../../ledger/batch.js';
import { encodeProposal } from '../../node/proposal.js';
import { checkPrepareTimestamp } from '../../node/timestamp-guard.js';

const config = makeConfig({ n: 3, pillars: 1 });
const NOW = 1_800_000_000_000;
const DRIFT = 2_000;

function prepareAt(timestampMs: number): Uint8Array {
  const batch = encodeProposal({
    view: 0n,
    proposer: 0,
    batch: encodeBatch({ timestampMs: BigInt(timestampMs), txs: [new Uint8Array(40)] }),
  });
  const trinx = new SoftwareTrinx(new Uint8Array(32).fill(1), { validator: 0, pillar: 0 });
  const cert = trinx.certifyIndependent(Counter.ORDER, { view: 0n, order: 2n }, sha256(batch));
  assert.ok(cert.ok);
  // The guard reads only the batch; the TOP certificate's content does not matter here.
  return encodeMessage({
    type: 'prepare',
    pillar: 0,
    view: 0n,
    order: 0n,
    batch,
    cert: cert.value,
    topCert: cert.value,
  });
}

describe('timestamp guard', () => {
  it('passes a PREPARE whose time is behind or within the drift of the local clock', () => {
    assert.deepEqual(checkPrepareTimestamp(prepareAt(NOW - 60_000), config, NOW, DRIFT), { ok: true });
    assert.deepEqual(checkPrepareTimestamp(prepareAt(NOW + DRIFT), config, NOW, DRIFT), { ok: true });
  });

  it('withholds a PREPARE whose time is further ahead than the drift, and says by how much', () => {
    const v = checkPrepareTimestamp(prepareAt(NOW + DRIFT + 1), config, NOW, DRIFT);
    assert.deepEqual(v, { ok: false, proposedMs: BigInt(NOW + DRIFT + 1), aheadMs: BigInt(DRIFT + 1) });
  });

  it('passes what is not a well-formed PREPARE with a proposal: the core judges those', () => {
    const garbage = new Uint8Array([1, 0, 0, 9, 9, 9]);
    assert.deepEqual(checkPrepareTimestamp(garbage, config, NOW, DRIFT), { ok: true });
    assert.deepEqual(checkPrepareTimestamp(new Uint8Array(0), config, NOW, DRIFT), { ok: true });
    const commitTagged = prepareAt(NOW + 10 * DRIFT);
    commitTagged[0] = 2;
    assert.deepEqual(checkPrepareTimestamp(commitTagged, config, NOW, DRIFT), { ok: true });
  });

  it('reads a batch timestamp without decoding its txs, and refuses non-batches', () => {
    assert.equal(peekBatchTimestamp(encodeBatch({ timestampMs: 42n, txs: [] })), 42n);
    assert.equal(peekBatchTimestamp(new Uint8Array(5)), null);
    assert.equal(peekBatchTimestamp(new Uint8Array(13).fill(7)), null);
  });
});
