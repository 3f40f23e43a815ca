import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeWire, encodeWire, type WireMessage } from '../../node/wire.js';

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
});
