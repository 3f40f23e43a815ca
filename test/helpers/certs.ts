// Commit certificates over fixed test keys, for tests of code that checks them.
import { type CommitCertificate, signCommit } from '../../ledger/block.js';
import { keyPairFromSeed, sha256 } from '../../ledger/keys.js';

/** Three validators' key pairs, the same in every run. */
export const testValidatorKeys = [0, 1, 2].map((i) => keyPairFromSeed(sha256(Uint8Array.of(i))));
export const testValidatorPublicKeys = testValidatorKeys.map((k) => k.publicKey);

/** A certificate of a made-up block at `height`, signed by the given validators. */
export function testCertificate(height: bigint, signers: number[]): CommitCertificate {
  const blockHash = sha256(Uint8Array.of(Number(height)));
  return {
    height,
    blockHash,
    signatures: signers.map((i) => signCommit(height, blockHash, i, testValidatorKeys[i]!.secretKey)),
  };
}
