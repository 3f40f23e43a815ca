import assert from 'node:assert/strict';
import { CertVerdicts } from '../../api/cert-verdicts.js';
import { type CommitCertificate, verifyCommitCertificate } from '../../ledger/block.js';
import { testCertificate, testValidatorPublicKeys } from '../helpers/certs.js';

const publicKeys = testValidatorPublicKeys;
const certFor = testCertificate;

describe('CertVerdicts', () => {
  it('gives the same verdicts as verifyCommitCertificate, remembered per certificate', () => {
    const v = new CertVerdicts(16, publicKeys, 1);
    const good = certFor(5n, [0, 1]);
    const short = certFor(6n, [2]);
    const forged: CommitCertificate = {
      ...good,
      signatures: good.signatures.map((s, i) => (i === 0 ? { ...s, signature: new Uint8Array(64) } : s)),
    };
    for (const c of [good, short, forged, good, short, forged]) {
      assert.equal(v.verify(c), verifyCommitCertificate(c, publicKeys, 1));
    }
    assert.deepEqual([v.verify(good), v.verify(short), v.verify(forged)], [true, false, false]);
    assert.equal(v.size, 3, 'a forged copy of a good certificate is its own entry');
  });

  it('keeps at most entriesMax verdicts', () => {
    const v = new CertVerdicts(2, publicKeys, 1);
    for (let h = 1n; h <= 5n; h++) assert.equal(v.verify(certFor(h, [0, 2])), true);
    assert.equal(v.size, 2);
  });
});
