import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeFrames, FrameDecoder } from '../../../node/transport/frame.js';

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  return chunks.filter((c) => c.length > 0);
}

describe('frame codec', () => {
  it('decodes any sequence of frames however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (messages, offsets) => {
          const total = messages.reduce((n, m) => n + m.length, 0);
          const stream = encodeFrames(messages, total);
          const decoder = new FrameDecoder(300);
          const out: Uint8Array[] = [];
          for (const chunk of cut(stream, offsets)) {
            const r = decoder.push(chunk);
            assert.ok(r.ok);
            out.push(...r.frames);
          }
          assert.deepEqual(
            out.map((m) => Buffer.from(m).toString('hex')),
            messages.map((m) => Buffer.from(m).toString('hex')),
          );
          assert.equal(decoder.pendingBytes, 0);
        },
      ),
    );
  });

  it('rejects an oversized length as soon as its header is complete, even split across chunks', () => {
    const decoder = new FrameDecoder(1000);
    assert.deepEqual(decoder.push(Buffer.of(0, 0)), { ok: true, frames: [] });
    const r = decoder.push(Buffer.of(0x03, 0xe9)); // 1001
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.claimedBytes, 1001);
    assert.equal(decoder.pendingBytes, 0, 'nothing of the bad frame is kept');
  });

  it('delivers the frames before an oversized one in the same chunk', () => {
    const good = encodeFrames([Buffer.from('ok')], 2);
    const bad = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const r = new FrameDecoder(10).push(Buffer.concat([good, bad]));
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.frames.map((f) => f.toString()),
      ['ok'],
    );
  });

  it('holds no more than one incomplete frame while waiting for the rest of it', () => {
    const decoder = new FrameDecoder(1 << 20);
    const frame = encodeFrames([Buffer.alloc(100_000, 7)], 100_000);
    for (let i = 0; i < frame.length - 1; i += 4096) {
      const r = decoder.push(frame.subarray(i, Math.min(i + 4096, frame.length - 1)));
      assert.deepEqual(r.frames, []);
    }
    assert.equal(decoder.pendingBytes, frame.length - 1);
    const last = decoder.push(frame.subarray(frame.length - 1));
    assert.equal(last.ok && last.frames[0]!.length, 100_000);
    assert.equal(decoder.pendingBytes, 0);
  });

  it('applies a tighter limit to the next few frames only, even when a larger one follows in the same chunk', () => {
    const decoder = new FrameDecoder(1000);
    decoder.restrictNext(2, 8);
    const r = decoder.push(encodeFrames([Buffer.alloc(8), Buffer.alloc(3), Buffer.alloc(900)], 911));
    assert.ok(r.ok);
    assert.deepEqual(
      r.frames.map((f) => f.length),
      [8, 3, 900],
    );
    decoder.restrictNext(1, 8);
    const tooBig = decoder.push(encodeFrames([Buffer.alloc(9)], 9));
    assert.equal(tooBig.ok, false);
    assert.equal(!tooBig.ok && tooBig.limitBytes, 8);
  });
});
