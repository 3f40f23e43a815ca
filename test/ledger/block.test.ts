import assert from 'node:assert/strict';
import {
  type Block,
  blockHash,
  type CommitCertificate,
  checkBlockBody,
  decodeBlock,
  decodeCommitCertificate,
  encodeBlock,
  encodeCommitCertificate,
  failure,
  resultsHash,
  signCommit,
  verifyCommitCertificate,
} from '../../ledger/block.js';
import { sha256 } from '../../ledger/keys.js';
import { merkleRoot } from '../../ledger/merkle.js';
import { txHash } from '../../ledger/tx.js';
import { CHAIN, seedKey, signed, transfer } from './helpers.js';

const a = seedKey(0);
const b = seedKey(1);
const validators = [seedKey(10), seedKey(11), seedKey(12)];

function sampleBlock(): Block {
  const txs = [signed(a, 1n, transfer(b, 5n)), signed(a, 1n, transfer(b, 5n)), new Uint8Array([1, 2, 3])];
  const results = [
    { ok: true as const },
    failure('bad-nonce', 'nonce 1, expected 2'),
    failure('malformed', 'x'),
  ];
  return {
    header: {
      chainId: CHAIN,
      height: 5n,
      prevHash: sha256(Uint8Array.of(4)),
      txRoot: merkleRoot(txs.map(txHash)),
      resultsHash: resultsHash(results),
      stateDigest: sha256(Uint8Array.of(9)),
      timestampMs: 1_700_000_000_000n,
      view: 2n,
      order: 4n,
      proposer: 2,
      txCount: 3,
    },
    txs,
    results,
    parentCommit: {
      height: 4n,
      blockHash: sha256(Uint8Array.of(4)),
      signatures: [signCommit(4n, sha256(Uint8Array.of(4)), 0, validators[0]!.secretKey)],
    },
  };
}

describe('ledger/block', () => {
  it('round-trips a block with failed txs and a parent commit', () => {
    const blk = sampleBlock();
    const dec = decodeBlock(encodeBlock(blk));
    assert.ok(dec.ok);
    assert.deepEqual(dec.value, blk);
    assert.ok(checkBlockBody(dec.value).ok);
    const noCommit = decodeBlock(encodeBlock({ ...blk, parentCommit: null }));
    assert.ok(noCommit.ok && noCommit.value.parentCommit === null);
  });

  it('encodes a block into a buffer of exactly its size, with and without a parent commit', () => {
    const blk = sampleBlock();
    const long = failure('bad-nonce', 'é'.repeat(400)); // cut at 256 bytes
    for (const b of [
      blk,
      { ...blk, parentCommit: null },
      { ...blk, results: [blk.results[0]!, long, long] },
    ]) {
      const bytes = encodeBlock(b);
      assert.equal(bytes.byteOffset, 0);
      assert.equal(bytes.buffer.byteLength, bytes.length);
      const dec = decodeBlock(bytes);
      assert.ok(dec.ok, dec.ok ? '' : dec.error.message);
      assert.deepEqual(encodeBlock(dec.value), bytes);
    }
  });

  it('rejects truncated and trailing block bytes', () => {
    const enc = encodeBlock(sampleBlock());
    for (const n of [0, 1, 10, enc.length - 1]) assert.equal(decodeBlock(enc.subarray(0, n)).ok, false);
    const t = decodeBlock(Uint8Array.from([...enc, 0]));
    assert.ok(!t.ok && t.error.code === 'trailing-bytes');
  });

  it('hashes the header only, so the parent commit does not change the block hash', () => {
    const blk = sampleBlock();
    const h = blockHash(blk.header);
    assert.deepEqual(blockHash({ ...blk.header }), h);
    assert.notDeepEqual(blockHash({ ...blk.header, timestampMs: blk.header.timestampMs + 1n }), h);
  });

  it('detects a body that does not match its header', () => {
    const blk = sampleBlock();
    assert.ok(!checkBlockBody({ ...blk, txs: [blk.txs[2]!, blk.txs[1]!, blk.txs[0]!] }).ok);
    assert.ok(!checkBlockBody({ ...blk, results: [{ ok: true }, { ok: true }, { ok: true }] }).ok);
    assert.ok(!checkBlockBody({ ...blk, parentCommit: { ...blk.parentCommit!, height: 3n } }).ok);
  });

  it('accepts a commit certificate only with f+1 distinct valid signatures', () => {
    const hash = sha256(Uint8Array.of(1));
    const pks = validators.map((v) => v.publicKey);
    const sig = (i: number, h = hash) => signCommit(7n, h, i, validators[i]!.secretKey);
    const cert = (signatures: CommitCertificate['signatures']): CommitCertificate => ({
      height: 7n,
      blockHash: hash,
      signatures,
    });
    assert.ok(verifyCommitCertificate(cert([sig(0), sig(2)]), pks, 1));
    assert.equal(verifyCommitCertificate(cert([sig(0)]), pks, 1), false);
    assert.equal(verifyCommitCertificate(cert([sig(0), sig(0)]), pks, 1), false, 'duplicate signer');
    assert.equal(verifyCommitCertificate(cert([sig(0), { ...sig(1), validator: 2 }]), pks, 1), false);
    assert.equal(verifyCommitCertificate(cert([sig(0), { ...sig(1), validator: 9 }]), pks, 1), false);
    assert.equal(verifyCommitCertificate(cert([sig(0), sig(1, sha256(Uint8Array.of(2)))]), pks, 1), false);
    assert.equal(verifyCommitCertificate({ ...cert([sig(0), sig(1)]), height: 8n }, pks, 1), false);
    const c = cert([sig(0), sig(1)]);
    const dec = decodeCommitCertificate(encodeCommitCertificate(c));
    assert.ok(dec.ok);
    assert.deepEqual(dec.value, c);
  });
});
