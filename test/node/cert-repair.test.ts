// The decisions of certificate repair (which heights, whom to ask, when) and the check of a
// certificate a peer sends back. The real exchange between validators is in
// validator-cert-repair.test.ts.
import assert from 'node:assert/strict';
import {
  type CommitCertificate,
  decodeCommitCertificate,
  encodeCommitCertificate,
  signCommit,
} from '../../ledger/block.js';
import { keyPairFromSeed, sha256 } from '../../ledger/keys.js';
import {
  CERT_REPAIR_DEFAULTS,
  CERTS_SERVED_PER_REQUEST_MAX,
  CertRepair,
  CertServeBudget,
  checkRepairedCertificate,
  trimmedCertificate,
} from '../../node/cert-repair.js';
import { decodeWire, encodeWire } from '../../node/wire.js';
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

  it('does not ask again for heights whose answer is matched and waiting to be checked', () => {
    const r = missingAt(3);
    const req = r.nextRequest(500, [1, 2], none);
    assert.ok(req !== null);
    assert.ok(r.takeResponse(req.peer, req.requestId) !== null);
    assert.equal(r.nextRequest(800, [1, 2], none), null, 'the answer is being checked');
    r.failed(1n, 900);
    const retry = r.nextRequest(1900, [1, 2], none);
    assert.ok(retry !== null);
    assert.deepEqual(retry.heights, [1n], 'only the height the answer did not bring');
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
    // Timed out at 2500; the height then backs off retryMsMin (1 s) before it is due again.
    assert.equal(r.nextRequest(2500, [1, 2], none), null);
    const retry = r.nextRequest(3500, [1, 2], none);
    assert.ok(retry !== null);
    assert.notEqual(retry.peer, first.peer);
    assert.equal(r.takeResponse(first.peer, first.requestId), null, 'the late answer is dropped');
  });

  it('gives a height up after attemptsMax requests that did not bring it, and scans on', () => {
    const given: bigint[] = [];
    const r = new CertRepair(0n, 0, { settleHeights: 0, graceMs: 0, missingMax: 1, attemptsMax: 3 }, (h) =>
      given.push(h),
    );
    r.scan(5n, 0, none);
    assert.equal(r.scannedUpTo, 1n, 'the full set holds the low-water mark');
    r.failed(1n, 0);
    r.failed(1n, 0);
    assert.equal(r.missingCount, 1);
    assert.deepEqual(given, []);
    r.failed(1n, 0);
    assert.equal(r.missingCount, 0, 'given up on the third attempt');
    assert.deepEqual(given, [1n], 'and reported once');
    r.failed(1n, 0);
    assert.deepEqual(given, [1n], 'a late failure of a dropped height reports nothing');
    r.scan(5n, 1, none);
    assert.equal(r.scannedUpTo, 2n, 'the low-water mark moves again');
  });

  it('counts an unanswered request as an attempt toward attemptsMax', () => {
    const given: bigint[] = [];
    const r = new CertRepair(
      0n,
      0,
      {
        settleHeights: 0,
        graceMs: 0,
        attemptsMax: 2,
        requestTimeoutMs: 100,
        retryMsMin: 10,
        backoffMsMax: 10,
      },
      (h) => given.push(h),
    );
    r.scan(1n, 0, none);
    assert.ok(r.nextRequest(0, [1, 2], none) !== null, 'first request');
    assert.equal(r.nextRequest(1000, [1, 2], none), null, 'timed out: backing off');
    assert.deepEqual(given, []);
    assert.ok(r.nextRequest(1100, [1, 2], none) !== null, 'second request');
    assert.equal(r.nextRequest(2100, [1, 2], none), null, 'timed out again: given up');
    assert.equal(r.missingCount, 0);
    assert.deepEqual(given, [1n]);
  });

  it('prefers a peer whose reported height reaches the lowest height asked', () => {
    const r = missingAt(10, { heightsPerRequestMax: 2 });
    const heights = new Map([
      [1, 0n],
      [2, 50n],
    ]);
    for (let i = 0; i < 3; i++) {
      const req = r.nextRequest(500 + i * 300, [1, 2], none, heights);
      assert.ok(req !== null);
      assert.equal(req.peer, 2, 'peer 1 reported height 0');
      assert.ok(r.takeResponse(2, req.requestId) !== null);
      for (const h of req.heights) r.resolved(h);
    }
    const behind = new Map([
      [1, 0n],
      [2, 0n],
    ]);
    const a = r.nextRequest(2000, [1, 2], none, behind);
    const b = r.nextRequest(2300, [1, 2], none, behind);
    assert.ok(a !== null && b !== null, 'with no peer known to be ahead, any peer is asked');
    assert.notEqual(a.peer, b.peer);
  });

  it('remembers our block hash of a missing height until the height is resolved', () => {
    const r = missingAt(2);
    const hash = sha256(Uint8Array.of(1));
    assert.equal(r.ownHash(1n), null);
    r.noteOwnHash(1n, hash);
    r.noteOwnHash(5n, hash);
    assert.equal(r.ownHash(1n), hash);
    assert.equal(r.ownHash(5n), null, 'a height not missing is not remembered');
    r.resolved(1n);
    assert.equal(r.ownHash(1n), null);
  });

  it('scans at most 128 heights a tick by default (each may be a synchronous read)', () => {
    assert.equal(CERT_REPAIR_DEFAULTS.scanPerTickMax, 128);
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

  it('keeps only f+1 verified signatures, dropping a zeroed one and a signer outside genesis', async () => {
    // Five validators, f = 2: three good signatures and junk that verifyCommitCertificate skips.
    const keys5 = [0, 1, 2, 3, 4].map((i) => keyPairFromSeed(sha256(Uint8Array.of(i))));
    const pks5 = keys5.map((k) => k.publicKey);
    const hash = sha256(Uint8Array.of(42));
    const sig = (v: number) => signCommit(height, hash, v, keys5[v]!.secretKey);
    const stuffed: CommitCertificate = {
      height,
      blockHash: hash,
      signatures: [
        { validator: 1, signature: new Uint8Array(64) },
        { validator: 9999, signature: sig(4).signature },
        sig(0),
        sig(2),
        sig(3),
      ],
    };
    const r = await checkRepairedCertificate(
      encodeCommitCertificate(stuffed),
      requested,
      async () => hash,
      pks5,
      2,
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.cert.signatures.map((s) => s.validator),
      [0, 2, 3],
    );
    const extra = { ...stuffed, signatures: [sig(0), sig(2), sig(3), sig(4)] };
    const t = await checkRepairedCertificate(
      encodeCommitCertificate(extra),
      requested,
      async () => hash,
      pks5,
      2,
    );
    assert.ok(t.ok);
    assert.deepEqual(
      t.cert.signatures.map((s) => s.validator),
      [0, 2, 3],
      'signatures beyond f+1 are left out',
    );
  });

  it("returns a certificate that shares no memory with the peer's certs-response frame", async () => {
    const frame = Buffer.from(
      encodeWire({ type: 'certs-response', requestId: 1, certs: [encodeCommitCertificate(good)] }),
    );
    const w = decodeWire(frame, { consensusBytesMax: 1 << 20, blockBytesMax: 1 << 20 });
    assert.ok(w.ok && w.value.type === 'certs-response');
    const raw = w.value.certs[0]!;
    assert.equal(
      raw.buffer,
      frame.buffer,
      'the decoded bytes are a view into the frame (what the fix guards against)',
    );
    const r = await checkRepairedCertificate(raw, requested, own, testValidatorPublicKeys, F);
    assert.ok(r.ok);
    for (const a of [r.cert.blockHash, ...r.cert.signatures.map((s) => s.signature)]) {
      assert.notEqual(a.buffer, frame.buffer);
      assert.equal(a.buffer.byteLength, a.byteLength, 'each array owns exactly its bytes');
    }
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

describe('node/cert-repair: trimming a certificate that came with state transfer', () => {
  const height = 3n;
  const good = testCertificate(height, [0, 1, 2]);

  it('keeps f+1 verified signatures of our hash, in arrays apart from the blocks-response frame', () => {
    const junk = {
      ...good,
      signatures: [{ validator: 9999, signature: new Uint8Array(64) }, ...good.signatures],
    };
    const frame = Buffer.from(
      encodeWire({
        type: 'blocks-response',
        requestId: 1,
        tipHeight: height,
        blocks: [{ block: Uint8Array.of(1), cert: encodeCommitCertificate(junk) }],
      }),
    );
    const w = decodeWire(frame, { consensusBytesMax: 1 << 20, blockBytesMax: 1 << 20 });
    assert.ok(w.ok && w.value.type === 'blocks-response');
    const d = decodeCommitCertificate(w.value.blocks[0]!.cert!);
    assert.ok(d.ok);
    assert.equal(d.value.blockHash.buffer, frame.buffer, 'decoded in place (what the fix guards against)');
    const t = trimmedCertificate(d.value, height, good.blockHash, testValidatorPublicKeys, F);
    assert.ok(t !== null);
    assert.deepEqual(
      t.signatures.map((s) => s.validator),
      [0, 1],
    );
    for (const a of [t.blockHash, ...t.signatures.map((s) => s.signature)]) {
      assert.notEqual(a.buffer, frame.buffer);
      assert.equal(a.buffer.byteLength, a.byteLength);
    }
  });

  it('returns null for another height or hash, or fewer than f+1 good signatures', () => {
    assert.equal(trimmedCertificate(good, 4n, good.blockHash, testValidatorPublicKeys, F), null);
    assert.equal(
      trimmedCertificate(good, height, sha256(Uint8Array.of(0)), testValidatorPublicKeys, F),
      null,
    );
    const one = {
      ...good,
      signatures: [good.signatures[0]!, { validator: 1, signature: new Uint8Array(64) }],
    };
    assert.equal(trimmedCertificate(one, height, good.blockHash, testValidatorPublicKeys, F), null);
  });
});

describe('node/cert-repair: serving peers', () => {
  it('caps the heights of one request and budgets requests and heights per peer and window', () => {
    const b = new CertServeBudget({ requestsPerWindowMax: 3, heightsPerWindowMax: 100, windowMs: 1000 });
    assert.equal(b.take(1, 128, 0), CERTS_SERVED_PER_REQUEST_MAX, 'one request: at most 64 heights');
    assert.equal(b.take(1, 128, 10), 36, 'then what is left of the window');
    assert.equal(b.take(1, 1, 20), 0, 'heights used up');
    assert.equal(b.take(2, 10, 20), 10, 'another peer has its own budget');
    assert.equal(b.take(2, 10, 30), 10);
    assert.equal(b.take(2, 10, 40), 10);
    assert.equal(b.take(2, 10, 50), 0, 'requests used up');
    assert.equal(b.take(1, 5, 1000), 5, 'a new window');
    assert.equal(b.take(2, 5, 1050), 5);
  });
});
