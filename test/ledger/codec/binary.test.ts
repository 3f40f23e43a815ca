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
