// Whether a commit certificate's signatures check out, remembered per certificate.
// Rendering a block reports `verified` for its own certificate and its parent's, which
// costs an Ed25519 verification per signature (four for f = 1); block h's certificate is
// also block h+1's parentCommit, and a block rendered again after the rendered-block
// cache evicted it would verify the same signatures again. The key is the certificate's
// full encoding (height, block hash, every signature), so a different certificate for the
// same block is verified on its own.
//
// Most certificates the API shows were formed or checked by this very node (its own
// signature and peers' signatures it verified, or a state transfer's vouched ones), and
// checking them again cost 0.15-0.2 ms of main-thread CPU per block at 50 tx/s. `trusted`
// answers for those (the store remembers certificate objects put as verified); anything
// else, such as one read back from disk after a restart, is verified here as before.
import { type CommitCertificate, encodeCommitCertificate, verifyCommitCertificate } from '../ledger/block.js';
import { Lru } from './lru.js';

export interface CertVerdictsOptions {
  /** True for a certificate whose signatures were already checked in this process. */
  trusted?: (cert: CommitCertificate) => boolean;
  /** Called once per certificate actually verified here (a metric). */
  onVerify?: () => void;
}

export class CertVerdicts {
  private readonly verdicts: Lru<string, boolean>;
  private verifiedCount = 0;

  constructor(
    entriesMax: number,
    private readonly validatorKeys: Uint8Array[],
    private readonly f: number,
    private readonly opts: CertVerdictsOptions = {},
  ) {
    this.verdicts = new Lru(entriesMax);
  }

  readonly verify = (cert: CommitCertificate): boolean => {
    if (this.opts.trusted?.(cert) === true) return true;
    const k = Buffer.from(encodeCommitCertificate(cert)).toString('latin1');
    const known = this.verdicts.get(k);
    if (known !== undefined) return known;
    const ok = verifyCommitCertificate(cert, this.validatorKeys, this.f);
    this.verifiedCount++;
    this.opts.onVerify?.();
    this.verdicts.set(k, ok);
    return ok;
  };

  get size(): number {
    return this.verdicts.size;
  }

  /** Certificates verified here (cache misses that were not trusted). */
  get verifications(): number {
    return this.verifiedCount;
  }
}
