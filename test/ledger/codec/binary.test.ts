import assert from 'node:assert/strict';
import { fromHex, Reader, toHex, Writer } from '../../../ledger/codec/binary.js';

describe('ledger/codec/binary Writer', () => {
  it('shows the written bytes without a copy, unchanged by later writes, until reset', () => {
    const w = new Writer(4);
    w.u8(9).u16(0x0102);
    const first = w.written();
    assert.deepEqual(first, Uint8Array.of(9, 1, 2));
    // Appending, even past the capacity (a new buffer), leaves what was shown as it was.
    w.bytes(Uint8Array.of(7, 7, 7, 7, 7));
    assert.deepEqual(first, Uint8Array.of(9, 1, 2));
    assert.deepEqual(w.written().subarray(3), Uint8Array.of(0, 0, 0, 5, 7, 7, 7, 7, 7));
    w.reset();
    assert.equal(w.length, 0);
    w.u8(1);
    const r = new Reader(w.written());
    assert.equal(r.u8(), 1);
    r.end();
  });

  it('finish copies: the copy does not change when the writer is reused', () => {
    const w = new Writer(8).u16(0x0102);
    const out = w.finish();
    w.reset().u16(0x0304);
    assert.deepEqual(out, Uint8Array.of(1, 2));
  });
});

describe('ledger/codec/binary toHex', () => {
  it('encodes any Uint8Array in place: views at an offset, empty, Buffers and shared memory', () => {
    const whole = Uint8Array.of(9, 8, 7, 6, 5, 4);
    assert.equal(toHex(whole), '090807060504');
    assert.equal(toHex(whole.subarray(2, 5)), '070605');
    assert.equal(toHex(new Uint8Array(0)), '');
    assert.equal(toHex(Buffer.from([0xab, 0xcd])), 'abcd');
    const shared = new Uint8Array(new SharedArrayBuffer(3));
    shared[2] = 255;
    assert.equal(toHex(shared), '0000ff');
    assert.deepEqual(fromHex(toHex(whole)), whole);
  });
});

describe('ledger/codec/binary Reader', () => {
  const encoded = (...parts: (string | Uint8Array)[]): Uint8Array => {
    const w = new Writer();
    for (const p of parts) typeof p === 'string' ? w.string(p) : w.bytes(p);
    return w.finish();
  };

  it('decodes equal strings to the same value and different ones apart, the source unchanged', () => {
    const b = encoded('chain-a', 'chain-a', 'chain-b', 'chain-a', 'é✓', '');
    const before = Uint8Array.from(b);
    const r = new Reader(b);
    const got = [r.string(64), r.string(64), r.string(64), r.string(64), r.string(64), r.string(64)];
    r.end();
    assert.deepEqual(got, ['chain-a', 'chain-a', 'chain-b', 'chain-a', 'é✓', '']);
    assert.deepEqual(b, before, 'decoding wrote nothing into the source');
    // A remembered string is never answered for bytes that changed since.
    const again = Uint8Array.from(b);
    const r2 = new Reader(again);
    assert.equal(r2.string(64), 'chain-a');
    again[4 + 6] = 0x62; // 'chain-a' -> 'chain-b' in place
    const r3 = new Reader(again);
    assert.equal(r3.string(64), 'chain-b');
  });

  it('refuses an over-long or invalid string with typed errors naming the field', () => {
    const long = new Reader(encoded('abcdef'));
    assert.throws(
      () => long.string(5, 'chainId'),
      (e: Error & { code?: string; field?: string }) => e.code === 'oversized' && e.field === 'chainId',
    );
    const bad = new Reader(encoded(Uint8Array.of(0xff, 0xfe)));
    assert.throws(
      () => bad.string(8, 'name'),
      (e: Error & { code?: string }) => e.code === 'bad-value' && /UTF-8/.test(e.message),
    );
    const cut = new Reader(Uint8Array.of(0, 0));
    assert.throws(
      () => cut.string(8, 'name'),
      (e: Error & { code?: string; field?: string }) => e.code === 'truncated' && e.field === 'name.length',
    );
    const short = new Reader(Uint8Array.of(0, 0, 0, 4, 0x61));
    assert.throws(
      () => short.string(8, 'name'),
      (e: Error & { code?: string }) => e.code === 'truncated',
    );
  });
});

describe('ledger/codec/binary Reader with views', () => {
  it('reads length-prefixed bytes as a view into the input, bounds-checked like bytes', () => {
    const w = new Writer();
    w.u8(9)
      .bytes(Uint8Array.of(1, 2, 3))
      .u32(5);
    const input = w.finish();
    const r = new Reader(input, { views: true });
    r.u8();
    const v = r.bytes(16, 'field');
    assert.deepEqual(v, Uint8Array.of(1, 2, 3));
    assert.equal(v.buffer, input.buffer, 'no copy');
    assert.equal(v.byteOffset, input.byteOffset + 5);
    assert.equal(r.offset, 8);
    assert.throws(
      () => new Reader(input.subarray(1), { views: true }).bytes(2, 'field'),
      /field is 3 bytes, limit 2/,
    );
    assert.throws(() => new Reader(input.subarray(1, 6), { views: true }).bytes(16, 'field'), /truncated/);
  });
});
