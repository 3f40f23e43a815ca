import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { type Block, blockHash, type CommitCertificate, signCommit } from '../../ledger/block.js';
import { generateKeyPair } from '../../ledger/keys.js';
import { highestVouched, type TransferEvidence } from '../../node/transfer-vouch.js';

// Three validators (f = 1): a certificate needs two signatures.
const validators = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
const keys = validators.map((k) => k.publicKey);
const f = 1;

function chain(count: number, from = 1n, seed = 0): { blocks: Block[]; hashes: Uint8Array[] } {
  const blocks: Block[] = [];
  const hashes: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(32).fill(seed);
  for (let i = 0; i < count; i++) {
    const height = from + BigInt(i);
    const block: Block = {
      header: {
        chainId: 'vouch-test',
        height,
        prevHash: prev,
        txRoot: new Uint8Array(32),
        resultsHash: new Uint8Array(32),
        stateDigest: new Uint8Array(32).fill(seed),
        timestampMs: 1_000n + height,
        view: 0n,
        order: height,
        proposer: 0,
        txCount: 0,
      },
      txs: [],
      results: [],
      parentCommit: null,
    };
    prev = blockHash(block.header);
    blocks.push(block);
    hashes.push(prev);
  }
  return { blocks, hashes };
}

function cert(height: bigint, hash: Uint8Array, signers = [0, 1]): CommitCertificate {
  return {
    height,
    blockHash: hash,
    signatures: signers.map((v) =>
      signCommit(height, hash, v, (validators[v] as { secretKey: Uint8Array }).secretKey),
    ),
  };
}

const evidence = (
  over: Partial<TransferEvidence> & Pick<TransferEvidence, 'blocks' | 'hashes'>,
): TransferEvidence => ({
  certs: over.blocks.map(() => null),
  checkpoint: null,
  validatorPublicKeys: keys,
  f,
  ...over,
});

describe('state transfer: which received blocks are vouched for', () => {
  it('vouches for the highest block whose own certificate is valid, and nothing above it', () => {
    const { blocks, hashes } = chain(4);
    const certs = [null, cert(2n, hashes[1]!), null, null];
    assert.equal(highestVouched(evidence({ blocks, hashes, certs })), 1);
  });

  it("vouches for a block through the next block's parentCommit when that certificate is for it", () => {
    const { blocks, hashes } = chain(3);
    blocks[2]!.parentCommit = cert(2n, hashes[1]!);
    assert.equal(highestVouched(evidence({ blocks, hashes })), 1);
  });

  it('refuses a made-up block followed by one carrying a real certificate of another block', () => {
    // The real chain's block 5 has a certificate anyone can read from the API. A Byzantine
    // peer makes up blocks 5 and 6 (a valid hash chain of its own) and attaches that
    // certificate to its block 6 as parentCommit.
    const real = chain(1, 5n, 1);
    const realCert = cert(5n, real.hashes[0]!);
    const forged = chain(2, 5n, 2);
    forged.blocks[1]!.parentCommit = realCert;
    assert.equal(highestVouched(evidence(forged)), -1);
    // Nor does a certificate of the right hash at another height count.
    forged.blocks[1]!.parentCommit = cert(6n, forged.hashes[0]!);
    assert.equal(highestVouched(evidence(forged)), -1);
  });

  it('refuses a certificate with too few or unknown signers', () => {
    const { blocks, hashes } = chain(2);
    const one = cert(2n, hashes[1]!, [0]);
    const twice = { ...one, signatures: [...one.signatures, ...one.signatures] };
    const stranger = generateKeyPair();
    const outsider = {
      ...one,
      signatures: [...one.signatures, signCommit(2n, hashes[1]!, 3, stranger.secretKey)],
    };
    for (const c of [one, twice, outsider]) {
      assert.equal(highestVouched(evidence({ blocks, hashes, certs: [null, c] })), -1);
    }
  });

  it("vouches for the block at the replica's own stable checkpoint", () => {
    const { blocks, hashes } = chain(3);
    const checkpoint = { order: 2n, blockHash: hashes[1]! };
    assert.equal(highestVouched(evidence({ blocks, hashes, checkpoint })), 1);
    const wrong = { order: 2n, blockHash: hashes[2]! };
    assert.equal(highestVouched(evidence({ blocks, hashes, checkpoint: wrong })), -1);
  });
});
