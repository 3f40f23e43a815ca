import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkTarget, type DecodeResult, decoderTarget, FuzzViolation, targetProperty } from './harness.js';
import { allTargets } from './targets/index.js';

// A few hundred hostile cases per target on every test run; long runs go through `npm run fuzz`.
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

describe('fuzz targets', () => {
  const targets = allTargets();

  it('the registry names every target once', () => {
    const names = targets.map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.length > 0);
  });

  for (const t of targets) {
    describe(t.name, () => {
      if (t.acceptsValid !== false) {
        it('accepts its valid inputs, so mutations reach past the first check', async () => {
          await fc.assert(
            fc.asyncProperty(t.valid, async (bytes) => {
              assert.equal(await t.run(bytes), 'accepted');
            }),
            { numRuns: 50 },
          );
        });
      }

      const big = t.oversized();
      if (big) {
        it('refuses an input just above its size limit', async () => {
          assert.equal(await t.run(big), 'rejected');
        });
      }

      // Asynchronous targets drive real handshakes (with timeouts): fewer runs keep the suite fast.
      const runs = t.async ? Math.ceil(RUNS / 3) : RUNS;
      it(`keeps every property on ${runs} hostile inputs`, async () => {
        const counts = { accepted: 0, rejected: 0 };
        const d = await checkTarget(t, { numRuns: runs }, counts);
        if (d.failed) {
          assert.fail(
            `${String(d.errorInstance)}\nreplay: npm run fuzz -- --target ${t.name} --seed ${d.seed} --path ${d.counterexamplePath} --runs ${runs}`,
          );
        }
        assert.ok(
          counts.rejected > 0,
          'no hostile input was rejected: the mutator is not reaching the decoder',
        );
      });
    });
  }
});

describe('fuzz harness', () => {
  // The properties must be able to fail: each broken decoder below is caught.
  const valid = fc.uint8Array({ minLength: 4, maxLength: 32 }).map((b) => {
    const out = new Uint8Array(4 + b.length);
    new DataView(out.buffer).setUint32(0, b.length);
    out.set(b, 4);
    return out;
  });
  const encode = (v: Uint8Array) => {
    const out = new Uint8Array(4 + v.length);
    new DataView(out.buffer).setUint32(0, v.length);
    out.set(v, 4);
    return out;
  };
  const typed = (message: string) => Object.assign(new Error(message), { code: 'bad-value' });
  const claimed = (b: Uint8Array) =>
    b.length < 4 ? Number.NaN : new DataView(b.buffer, b.byteOffset).getUint32(0);
  const brokenDecoders: Record<string, (b: Uint8Array) => DecodeResult<Uint8Array>> = {
    threw: (b) => {
      if (claimed(b) !== b.length - 4) throw new RangeError('length mismatch');
      return { ok: true, value: b.slice(4) };
    },
    'untyped-error': (b) =>
      claimed(b) === b.length - 4 ? { ok: true, value: b.slice(4) } : { ok: false, error: 'bad' },
    // Trusts the length prefix: allocates what the peer claims.
    unbounded: (b) => {
      const n = claimed(b);
      if (n < 0 || n > 1 << 20) return { ok: false, error: typed('no') };
      if (n === b.length - 4) return { ok: true, value: b.slice(4) };
      return n > 4096 ? { ok: true, value: new Uint8Array(n) } : { ok: false, error: typed('no') };
    },
    // Returns a view into the caller's buffer instead of a copy.
    aliasing: (b) =>
      claimed(b) === b.length - 4 ? { ok: true, value: b.subarray(4) } : { ok: false, error: typed('no') },
    // Ignores trailing bytes: accepts inputs it cannot re-encode.
    'round-trip': (b) =>
      claimed(b) >= 0 && claimed(b) <= b.length - 4
        ? { ok: true, value: b.slice(4, 4 + claimed(b)) }
        : { ok: false, error: typed('no') },
  };
  for (const [property, decode] of Object.entries(brokenDecoders)) {
    it(`catches a decoder that breaks the ${property} property`, () => {
      const t = decoderTarget({ name: property, valid, inputBytesMax: 1 << 16, decode, encode });
      const d = fc.check(targetProperty(t), { numRuns: 2000, seed: 42 });
      assert.equal(d.failed, true, `${property} went unnoticed`);
      assert.ok(d.errorInstance instanceof FuzzViolation, String(d.errorInstance));
      assert.equal(d.errorInstance.property, property, d.errorInstance.message);
    });
  }
});
