// The decisions of certificate repair (which heights, whom to ask, when) and the check of a
// certificate a peer sends back. The real exchange between validators is in
// validator-cert-repair.test.ts.
import assert from 'node:assert/strict';
import { type CommitCertificate, encodeCommitCertificate, signCommit } from '../../ledger/block.js';
import { sha256 } from '../../ledger/keys.js';
import { CertRepair, checkRepairedCertificate } from '../../node/cert-repair.js';
import { testCertificate, testValidatorKeys, testValidatorPublicKeys } from '../helpers/certs.js';

const F = 1;
const none = (): boolean => false;

describe('node/cert-repair: finding missing certificates', () => {
  it('looks at each height once, behind the newest settleHeights while the tip moves', () => {
    const r = new CertRepair(0n, 0, { settleHeights: 4, graceMs: 0, idleMs: 1000 });
    const looked: bigint[] = [];
    const has = (h: bigint): boolean => {
      looked.push(h);
      return h % 2n === 0n;
    };
    r.scan(10n, 0, has);
    assert.deepEqual(looked, [1n, 2n, 3n, 4n, 5n, 6n], 'the newest 4 heights are left alone');
    r.scan(12n, 50, has);
    assert.deepEqual(looked.slice(6), [7n, 8n], 'only the heights new behind the frontier are looked at');
    r.scan(12n, 100, has);
    assert.equal(looked.length, 8, 'nothing is looked at twice');
    assert.equal(r.missingCount, 4);
  });

  it('looks at the newest heights too once the tip has stood still for idleMs', () => {
    const r = new CertRepair(0n, 0, { settleHeights: 4, idleMs: 1000 });
    r.scan(5n, 0, none);
    assert.equal(r.scannedUpTo, 1n);
    r.scan(5n, 999, none);
    assert.equal(r.scannedUpTo, 1n);
    r.scan(5n, 1000, none);
    assert.equal(r.scannedUpTo, 5n, 'the tip itself is looked at on a quiet chain');
  });

  it('starts startScanHeights below the tip and scans at most scanPerTickMax a round', () => {
    const r = new CertRepair(100_000n, 0, { startScanHeights: 1000, scanPerTickMax: 300, settleHeights: 0 });
    let calls = 0;
    const count = (): boolean => {
      calls++;
      return true;
    };
    assert.equal(r.scannedUpTo, 99_000n);
    r.scan(100_000n, 0, count);
    assert.equal(calls, 300);
    for (let i = 1; i < 10; i++) r.scan(100_000n, i, count);
    assert.equal(calls, 1000, 'the start scan covers the last startScanHeights heights only');
  });

  it('stops the low-water mark while missingMax heights are missing, skipping none', () => {
    const r = new CertRepair(0n, 0, { missingMax: 3, settleHeights: 0, graceMs: 0 });
    r.scan(10n, 0, none);
    assert.equal(r.missingCount, 3);
    assert.equal(r.scannedUpTo, 3n);
    r.resolved(2n);
    r.scan(10n, 1, none);
    assert.equal(r.scannedUpTo, 4n, 'one resolved height lets one more be looked at');
  });
});

describe('node/cert-repair: asking peers', () => {
  const missingAt = (heights: number, opts = {}) => {
    const r = new CertRepair(0n, 0, { settleHeights: 0, graceMs: 500, requestIntervalMs: 200, ...opts });
    r.scan(BigInt(heights), 0, none);
    return r;
  };

  it('waits graceMs before asking for a height, then asks the lowest first, capped per request', () => {
    const r = missingAt(100, { heightsPerRequestMax: 10 });
    assert.equal(r.nextRequest(499, [1, 2], none), null, 'within the grace period');
    const req = r.nextRequest(500, [1, 2], none);
    assert.ok(req !== null);
    assert.deepEqual(
      req.heights,
      Array.from({ length: 10 }, (_, i) => BigInt(i + 1)),
    );
  });

  it('sends at most one request per requestIntervalMs and keeps one outstanding per peer', () => {
    const r = missingAt(100, { heightsPerRequestMax: 10 });
    const a = r.nextRequest(500, [1, 2], none);
    assert.ok(a !== null);
    assert.equal(r.nextRequest(600, [1, 2], none), null, 'rate');
    const b = r.nextRequest(700, [1, 2], none);
    assert.ok(b !== null);
    assert.notEqual(a.peer, b.peer);
    assert.deepEqual(
      b.heights,
      Array.from({ length: 10 }, (_, i) => BigInt(i + 11)),
      'heights in flight are not asked for twice',
    );
    assert.equal(r.nextRequest(900, [1, 2], none), null, 'both peers have a request outstanding');
  });

  it('drops a height that got its certificate meanwhile instead of asking for it', () => {
    const r = missingAt(3);
    const req = r.nextRequest(500, [1], (h) => h === 2n);
    assert.ok(req !== null);
    assert.deepEqual(req.heights, [1n, 3n]);
    assert.equal(r.missingCount, 2);
  });

  it('looks up certificates only for the candidates of the request, not for every due height', () => {
    const r = missingAt(1000, { heightsPerRequestMax: 10, scanPerTickMax: 1000 });
    let lookups = 0;
    const req = r.nextRequest(500, [1], (h) => {
      lookups++;
      return h <= 5n;
    });
    assert.ok(req !== null);
    assert.deepEqual(
      req.heights,
      Array.from({ length: 10 }, (_, i) => BigInt(i + 6)),
    );
    assert.equal(lookups, 15, 'five certified heights dropped, ten asked for, nothing else read');
    assert.equal(r.missingCount, 995);
  });

  it('answers only the outstanding request of that peer, once', () => {
    const r = missingAt(3);
    const req = r.nextRequest(500, [1, 2], none);
    assert.ok(req !== null);
    const other = req.peer === 1 ? 2 : 1;
    assert.equal(r.takeResponse(other, req.requestId), null, 'not asked of that peer');
    assert.equal(r.takeResponse(req.peer, req.requestId + 1), null, 'another request id');
    assert.deepEqual(r.takeResponse(req.peer, req.requestId), [1n, 2n, 3n]);
    assert.equal(r.takeResponse(req.peer, req.requestId), null, 'a second answer');
  });

  it('after a failure backs off, then asks another peer', () => {
    const r = missingAt(1);
    const first = r.nextRequest(500, [1, 2], none);
    assert.ok(first !== null);
    r.takeResponse(first.peer, first.requestId);
    r.failed(1n, 600);
    assert.equal(r.nextRequest(1000, [1, 2], none), null, 'backing off');
    const retry = r.nextRequest(1600, [1, 2], none);
    assert.ok(retry !== null);
    assert.notEqual(retry.peer, first.peer, 'the retry goes to the other peer');
    r.takeResponse(retry.peer, retry.requestId);
    r.resolved(1n);
    assert.equal(r.missingCount, 0);
  });

  it('gives an unanswered request up after requestTimeoutMs and asks another peer', () => {
    const r = missingAt(1, { requestTimeoutMs: 2000 });
    const first = r.nextRequest(500, [1, 2], none);
    assert.ok(first !== null);
    assert.equal(r.nextRequest(2400, [1, 2], none), null, 'still waiting for the answer');
    // Timed out at 2500; the height then backs off graceMs * 2 before it is due again.
    assert.equal(r.nextRequest(2500, [1, 2], none), null);
    const retry = r.nextRequest(3500, [1, 2], none);
    assert.ok(retry !== null);
    assert.notEqual(retry.peer, first.peer);
    assert.equal(r.takeResponse(first.peer, first.requestId), null, 'the late answer is dropped');
  });

  it('asks nobody while no peer is connected', () => {
    const r = missingAt(1);
    assert.equal(r.nextRequest(500, [], none), null);
    assert.ok(r.nextRequest(501, [2], none) !== null);
  });
});

describe('node/cert-repair: checking a certificate a peer sent', () => {
  const height = 7n;
  const good = testCertificate(height, [0, 2]);
  const own = async (h: bigint): Promise<Uint8Array | null> => (h === height ? good.blockHash : null);
  const requested = new Set([height]);
  const check = (c: CommitCertificate | Uint8Array, asked: ReadonlySet<bigint> = requested) =>
    checkRepairedCertificate(
      c instanceof Uint8Array ? c : encodeCommitCertificate(c),
      asked,
      own,
      testValidatorPublicKeys,
      F,
    );
  const refusal = async (c: CommitCertificate | Uint8Array, asked?: ReadonlySet<bigint>) => {
    const r = await check(c, asked);
    assert.equal(r.ok, false, 'a bad certificate was accepted');
    return r.ok ? null : r.reason;
  };

  it('accepts f+1 genesis validators signing our own block hash', async () => {
    const r = await check(good);
    assert.ok(r.ok);
    assert.equal(r.cert.height, height);
    assert.deepEqual(r.cert.blockHash, good.blockHash);
  });

  it('refuses a valid certificate of another block hash at that height', async () => {
    const otherHash = sha256(Uint8Array.of(99));
    const forged: CommitCertificate = {
      height,
      blockHash: otherHash,
      signatures: [0, 1].map((i) => signCommit(height, otherHash, i, testValidatorKeys[i]!.secretKey)),
    };
    assert.equal(await refusal(forged), 'does-not-certify');
  });

  it('refuses forged or too few signatures, and signers outside genesis', async () => {
    const bad = {
      ...good,
      signatures: good.signatures.map((s) => ({ ...s, signature: new Uint8Array(64) })),
    };
    assert.equal(await refusal(bad), 'does-not-certify');
    assert.equal(await refusal({ ...good, signatures: good.signatures.slice(0, 1) }), 'does-not-certify');
    const outsider = { ...good, signatures: [good.signatures[0]!, { ...good.signatures[1]!, validator: 7 }] };
    assert.equal(await refusal(outsider), 'does-not-certify');
  });

  it('refuses one signer twice, and more signatures than validators, before verifying any', async () => {
    const twice = { ...good, signatures: [good.signatures[0]!, good.signatures[0]!] };
    assert.equal(await refusal(twice), 'duplicate-signer');
    const many = {
      ...good,
      signatures: [0, 1, 2, 3].map((v) => ({ validator: v, signature: new Uint8Array(64) })),
    };
    assert.equal(await refusal(many), 'too-many-signatures');
  });

  it('refuses a certificate of a height not asked for, or of a height without our block', async () => {
    assert.equal(await refusal(good, new Set([8n])), 'not-requested');
    const unknown = testCertificate(9n, [0, 1]);
    assert.equal(await refusal(unknown, new Set([9n])), 'does-not-certify');
  });

  it('refuses bytes that do not decode as a certificate', async () => {
    assert.equal(await refusal(Uint8Array.of(1, 2, 3)), 'undecodable');
    const encoded = encodeCommitCertificate(good);
    assert.equal(await refusal(encoded.subarray(0, encoded.length - 1)), 'undecodable');
  });
});
