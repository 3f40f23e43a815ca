import assert from 'node:assert/strict';
import { verify } from '../../ledger/keys.js';
import { precheckTxs, startPrecheck } from '../../ledger/state.js';
import { signingBytesOfEncoded } from '../../ledger/tx.js';
import {
  INLINE_SIGNATURES_MAX,
  type SignatureCheck,
  VerifyPool,
  verifyCheck,
} from '../../ledger/verify-pool.js';
import { CHAIN, seedKey, signed, transfer } from './helpers.js';

const a = seedKey(0);
const b = seedKey(1);

/** A check with its message whole (what mixedChecks makes). */
type WholeCheck = { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array };

/** 200 checks: good ones, flipped bits, the wrong key, a short key and a short signature. */
function mixedChecks(): WholeCheck[] {
  return Array.from({ length: 200 }, (_, i) => {
    const bytes = signed(a, BigInt(i + 1), transfer(b, 1n));
    const message = signingBytesOfEncoded(bytes);
    let signature = bytes.slice(bytes.length - 64);
    if (i % 3 === 1) signature[i % 64]! ^= 1;
    if (i % 13 === 5) signature = signature.subarray(1);
    const publicKey = i % 7 === 2 ? b.publicKey : i % 11 === 3 ? a.publicKey.subarray(1) : a.publicKey;
    return { signature, message, publicKey };
  });
}

describe('ledger/verify-pool', () => {
  let pool: VerifyPool;
  beforeEach(() => {
    pool = new VerifyPool(2);
  });
  afterEach(() => pool.close());

  it('agrees with verify on every check, in order, across several jobs and workers', async () => {
    const checks = mixedChecks();
    const want = checks.map((c) => verify(c.signature, c.message, c.publicKey));
    assert.ok(want.some((w) => w) && want.some((w) => !w), 'both outcomes are exercised');
    assert.deepEqual(await pool.verifyMany(checks), want);
    // Concurrent calls get their own answers.
    const [x, y] = await Promise.all([
      pool.verifyMany(checks.slice(0, 100)),
      pool.verifyMany(checks.slice(100)),
    ]);
    assert.deepEqual([...x, ...y], want);
  });

  it('checks a few signatures inline and an empty list at once', async () => {
    const few = mixedChecks().slice(0, INLINE_SIGNATURES_MAX);
    assert.deepEqual(
      await pool.verifyMany(few),
      few.map((c) => verify(c.signature, c.message, c.publicKey)),
    );
    assert.deepEqual(await pool.verifyMany([]), []);
  });

  it('verifies a check asked again while a worker holds it only once, and never shares a forged copy', async () => {
    const checks = mixedChecks();
    const want = checks.map((c) => verify(c.signature, c.message, c.publicKey));
    // The same signatures over other messages or keys: they must get verdicts of their own.
    const forged = checks.map((c, i) =>
      i % 2 === 0
        ? { ...c, message: Uint8Array.of(...c.message, 0) }
        : { ...c, publicKey: seedKey(2).publicKey },
    );
    const [first, again, few, other] = await Promise.all([
      pool.verifyMany(checks),
      pool.verifyMany(checks),
      pool.verifyMany(checks.slice(0, 3)),
      pool.verifyMany(forged),
    ]);
    assert.deepEqual(first, want);
    assert.deepEqual(again, want);
    assert.deepEqual(few, want.slice(0, 3));
    assert.deepEqual(
      other,
      forged.map((c) => verify(c.signature, c.message, c.publicKey)),
    );
    const sized = (cs: readonly SignatureCheck[]): number =>
      cs.filter((c) => c.signature.length === 64 && c.publicKey.length === 32).length;
    const wellSized = sized(checks);
    // The original checks once, the forged copies (the well-sized ones) once more.
    assert.equal(pool.signaturesVerified, wellSized + sized(forged));
    // Answered checks are not remembered: asked later, they are verified again.
    await pool.verifyMany(checks);
    assert.equal(pool.signaturesVerified, 2 * wellSized + sized(forged));
  });

  it('verifies a message given in two parts as the joined message, in jobs and inline', async () => {
    const whole = mixedChecks();
    // Split at a different point per check, the first part sometimes empty.
    const split: SignatureCheck[] = whole.map((c, i) => {
      const at = i % 5 === 0 ? 0 : (i * 7) % c.message.length;
      return {
        signature: c.signature,
        messagePrefix: c.message.subarray(0, at),
        messageBody: c.message.subarray(at),
        publicKey: c.publicKey,
      };
    });
    const want = whole.map((c) => verify(c.signature, c.message, c.publicKey));
    assert.deepEqual(await pool.verifyMany(split), want);
    assert.deepEqual(
      await pool.verifyMany(split.slice(0, INLINE_SIGNATURES_MAX)),
      want.slice(0, INLINE_SIGNATURES_MAX),
    );
    assert.deepEqual(split.map(verifyCheck), want);
    // A part moved from one side of the split to the other is still the same message...
    const c = whole[0]!;
    const parts = (prefix: Uint8Array, body: Uint8Array): SignatureCheck => ({
      signature: c.signature,
      messagePrefix: prefix,
      messageBody: body,
      publicKey: c.publicKey,
    });
    const moved = parts(c.message.subarray(0, 3), c.message.subarray(3));
    assert.equal(verifyCheck(moved), want[0]);
    assert.equal(want[0], true);
    // ...and a byte dropped from the first part is not.
    const dropped = parts(c.message.subarray(1, 3), c.message.subarray(3));
    assert.equal(verifyCheck(dropped), false);
  });

  it('gives a check whose signature differs only outside its map key a verdict of its own', async () => {
    // The good ones: a bit flipped in any of them must not verify.
    const checks = mixedChecks().filter((c) => verify(c.signature, c.message, c.publicKey));
    const want = checks.map((c) => verify(c.signature, c.message, c.publicKey));
    // Same bytes 0-3 and 32-35 (the in-flight key), another byte changed: a colliding key.
    const colliding = checks.map((c) => {
      const signature = new Uint8Array(c.signature);
      signature[10]! ^= 1;
      return { ...c, signature };
    });
    const [first, other] = await Promise.all([pool.verifyMany(checks), pool.verifyMany(colliding)]);
    assert.deepEqual(first, want);
    assert.deepEqual(
      other,
      colliding.map((c) => verify(c.signature, c.message, c.publicKey)),
    );
    assert.equal(other.some(Boolean), false, 'no colliding copy borrowed a good verdict');
    assert.equal(pool.signaturesVerified, 2 * checks.length);
  });

  it('still answers correctly, inline, once its workers are gone', async () => {
    const checks = mixedChecks();
    await pool.verifyMany(checks); // starts the workers
    await pool.close();
    assert.deepEqual(
      await pool.verifyMany(checks),
      checks.map((c) => verify(c.signature, c.message, c.publicKey)),
    );
  });
});

describe('ledger/state startPrecheck', () => {
  it('gives exactly what precheckTxs gives, skipping txs the caller already verified', async () => {
    const bad = signed(a, 2n, transfer(b, 1n));
    bad[bad.length - 1]! ^= 1;
    const many = Array.from({ length: 40 }, (_, i) => signed(b, BigInt(i + 1), transfer(a, 1n)));
    const txs = [
      signed(a, 1n, transfer(b, 1n)),
      bad,
      signed(a, 3n, transfer(b, 1n), 'other'),
      new Uint8Array([1]),
      ...many,
    ];
    const run = startPrecheck(txs, CHAIN);
    // The hashes come at once, before the signature checks.
    assert.deepEqual(
      run.hashesHex,
      precheckTxs(txs, CHAIN).map((p) => p.hashHex),
    );
    assert.deepEqual(await run.txs, precheckTxs(txs, CHAIN));
    assert.equal((await startPrecheck(txs, CHAIN).txs)[1]?.rejection?.ok, false);
    // A caller's word that a tx verified is taken (the hash covers the signature): the forged one passes.
    const trusted = (): boolean => true;
    const got = await startPrecheck(txs, CHAIN, trusted).txs;
    assert.equal(got[1]?.rejection, null);
    assert.deepEqual(got, precheckTxs(txs, CHAIN, trusted));
  });
});

describe('ledger/verify-pool in a process with nothing else to do', () => {
  it('answers a job in a process whose only work it is, and lets that process exit', async () => {
    const { execFile } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const pool = fileURLToPath(new URL('../../ledger/verify-pool.js', import.meta.url));
    const keys = fileURLToPath(new URL('../../ledger/keys.js', import.meta.url));
    // The child's only pending work is the pool's job; it must print the answer and exit
    // (idle workers are unref'd, so a hang here would time the test out).
    const script = `
      const { verifyMany } = await import(${JSON.stringify(pool)});
      const { generateKeyPair, sign } = await import(${JSON.stringify(keys)});
      const kp = generateKeyPair();
      const checks = Array.from({ length: 64 }, (_, i) => {
        const message = new TextEncoder().encode('m' + i);
        return { message, signature: sign(message, kp.secretKey), publicKey: kp.publicKey };
      });
      await verifyMany(checks); // the workers are up and idle (unref'd) now
      verifyMany(checks).then((ok) => console.log('verified', ok.filter(Boolean).length));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { timeout: 20_000 },
        (e, stdout) => (e ? reject(e) : resolve(stdout)),
      );
      child.stdin?.end();
    });
    assert.equal(out.trim(), 'verified 64');
  });
});
