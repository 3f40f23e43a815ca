import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeCommitCertificate } from '../../ledger/block.js';
import {
  CERT_BYTES_MAX,
  CERTS_PER_REQUEST_MAX,
  decodeWire,
  encodeWire,
  type WireMessage,
  WireTag,
} from '../../node/wire.js';
import { testCertificate } from '../helpers/certs.js';

const limits = { consensusBytesMax: 1 << 20, blockBytesMax: 1 << 20 };
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

const messages: fc.Arbitrary<WireMessage> = fc.oneof(
  fc.record({ type: fc.constant('consensus' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({
    type: fc.constant('txs' as const),
    txs: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant('block-sig' as const),
    height: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    hash: bytes(32),
    signature: bytes(64),
  }),
  fc.record({
    type: fc.constant('blocks-request' as const),
    requestId: fc.nat(),
    fromHeight: fc.bigInt({ min: 0n, max: 1n << 40n }),
    count: fc.integer({ min: 0, max: 1024 }),
  }),
  fc.record({
    type: fc.constant('blocks-response' as const),
    requestId: fc.nat(),
    tipHeight: fc.bigInt({ min: 0n, max: 1n << 40n }),
    blocks: fc.array(
      fc.record({
        block: fc.uint8Array({ maxLength: 64 }),
        cert: fc.option(fc.uint8Array({ maxLength: 32 }), { nil: null }),
      }),
      { maxLength: 4 },
    ),
  }),
  fc.record({
    type: fc.constant('status' as const),
    height: fc.bigInt({ min: 0n, max: 1n << 40n }),
    view: fc.bigInt({ min: 0n, max: 1n << 40n }),
  }),
);

const norm = (m: WireMessage): unknown =>
  JSON.parse(
    JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v)),
  );

describe('node/wire', () => {
  it('round-trips every replica message type', () => {
    fc.assert(
      fc.property(messages, (m) => {
        const d = decodeWire(encodeWire(m), limits);
        assert.ok(d.ok);
        assert.deepEqual(norm(d.value), norm(m));
      }),
    );
  });

  it('never throws on arbitrary bytes and refuses unknown tags', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        decodeWire(b, limits);
      }),
    );
    const bad = decodeWire(new Uint8Array([99, 0, 0]), limits);
    assert.equal(bad.ok, false);
    assert.equal(decodeWire(new Uint8Array(0), limits).ok, false);
  });

  it('refuses counts above their bounds before allocating', () => {
    const m = new Uint8Array([2, 0xff, 0xff, 0xff, 0xff]);
    const d = decodeWire(m, limits);
    assert.equal(d.ok, false);
    if (!d.ok) assert.equal(d.error.code, 'oversized');
  });

  describe('certs-request and certs-response (certificate repair)', () => {
    const certMessages: fc.Arbitrary<WireMessage> = fc.oneof(
      fc.record({
        type: fc.constant('certs-request' as const),
        requestId: fc.nat(),
        heights: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), {
          maxLength: CERTS_PER_REQUEST_MAX,
        }),
      }),
      fc.record({
        type: fc.constant('certs-response' as const),
        requestId: fc.nat(),
        certs: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      }),
    );

    it('round-trip, a real encoded certificate included', () => {
      fc.assert(
        fc.property(certMessages, (m) => {
          const d = decodeWire(encodeWire(m), limits);
          assert.ok(d.ok);
          assert.deepEqual(norm(d.value), norm(m));
        }),
      );
      const cert = encodeCommitCertificate(testCertificate(5n, [0, 1]));
      const d = decodeWire(encodeWire({ type: 'certs-response', requestId: 3, certs: [cert] }), limits);
      assert.ok(d.ok && d.value.type === 'certs-response');
      assert.deepEqual(d.value.certs, [cert]);
    });

    it('refuse more heights or certificates than CERTS_PER_REQUEST_MAX, before allocating', () => {
      for (const tag of [WireTag.CERTS_REQUEST, WireTag.CERTS_RESPONSE]) {
        const m = new Uint8Array([tag, 0, 0, 0, 1, 0, 0, 0, CERTS_PER_REQUEST_MAX + 1]);
        const d = decodeWire(m, limits);
        assert.equal(d.ok, false);
        if (!d.ok) assert.equal(d.error.code, 'oversized');
      }
      const tooMany = Array.from({ length: CERTS_PER_REQUEST_MAX + 1 }, (_, i) => BigInt(i));
      const d = decodeWire(encodeWire({ type: 'certs-request', requestId: 1, heights: tooMany }), limits);
      assert.equal(d.ok, false);
    });

    it('refuse a certificate longer than CERT_BYTES_MAX', () => {
      const big = new Uint8Array(CERT_BYTES_MAX + 1);
      const d = decodeWire(encodeWire({ type: 'certs-response', requestId: 1, certs: [big] }), limits);
      assert.equal(d.ok, false);
      if (!d.ok) assert.equal(d.error.code, 'oversized');
      const fits = new Uint8Array(CERT_BYTES_MAX);
      assert.ok(decodeWire(encodeWire({ type: 'certs-response', requestId: 1, certs: [fits] }), limits).ok);
    });

    it('give a typed error, never a throw, on truncated, trailing or random bodies', () => {
      const req = encodeWire({ type: 'certs-request', requestId: 9, heights: [1n, 2n, 3n] });
      const res = encodeWire({ type: 'certs-response', requestId: 9, certs: [new Uint8Array(10)] });
      for (const m of [req, res]) {
        for (let cut = 1; cut < m.length; cut++) {
          const d = decodeWire(m.subarray(0, cut), limits);
          assert.equal(d.ok, false, `cut at ${cut}`);
          if (!d.ok) assert.equal(d.error.code, 'truncated');
        }
        const d = decodeWire(Uint8Array.of(...m, 0), limits);
        assert.equal(d.ok, false);
        if (!d.ok) assert.equal(d.error.code, 'trailing-bytes');
      }
      fc.assert(
        fc.property(
          fc.constantFrom(WireTag.CERTS_REQUEST, WireTag.CERTS_RESPONSE),
          fc.uint8Array({ maxLength: 200 }),
          (tag, body) => {
            const d = decodeWire(Uint8Array.of(tag, ...body), limits);
            if (!d.ok) assert.ok(d.error.code.length > 0);
          },
        ),
      );
    });
  });
});
