// Whether a commit certificate's signatures check out, remembered per certificate.
// Rendering a block reports `verified` for its own certificate and its parent's, which
// costs an Ed25519 verification per signature (four for f = 1); block h's certificate is
// also block h+1's parentCommit, and a block rendered again after the rendered-block
// cache evicted it would verify the same signatures again. The key is the certificate's
// full encoding (height, block hash, every signature), so a different certificate for the
// same block is verified on its own.
import { type CommitCertificate, encodeCommitCertificate, verifyCommitCertificate } from '../ledger/block.js';
import { Lru } from './lru.js';

export class CertVerdicts {
  private readonly verdicts: Lru<string, boolean>;

  constructor(
    entriesMax: number,
    private readonly validatorKeys: Uint8Array[],
    private readonly f: number,
  ) {
    this.verdicts = new Lru(entriesMax);
  }

  readonly verify = (cert: CommitCertificate): boolean => {
    const k = Buffer.from(encodeCommitCertificate(cert)).toString('latin1');
    const known = this.verdicts.get(k);
    if (known !== undefined) return known;
    const ok = verifyCommitCertificate(cert, this.validatorKeys, this.f);
    this.verdicts.set(k, ok);
    return ok;
  };

  get size(): number {
    return this.verdicts.size;
  }
}
