// Transport framing: the first thing a peer's bytes meet, before any authentication.
// The stream is cut into chunks at pseudo-random points (derived from the input, so a
// failure replays exactly) the way TCP would deliver it.
import fc from 'fast-check';
import { encodeFrames, FRAME_HEADER_BYTES, FrameDecoder } from '../../../node/transport/frame.js';
import { type FuzzTarget, FuzzViolation, type Outcome } from '../harness.js';
import { hostileInputs } from '../mutate.js';

const MESSAGE_BYTES_MAX = 256;
const CHUNK_BYTES_MAX = 97;

function chunkSizes(bytes: Uint8Array): number[] {
  let s = (bytes.length * 2654435761 + (bytes[0] ?? 7)) >>> 0;
  const sizes: number[] = [];
  let left = bytes.length;
  while (left > 0) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = Math.min(left, 1 + (s % CHUNK_BYTES_MAX));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

function runFrames(bytes: Uint8Array): Outcome {
  const dec = new FrameDecoder(MESSAGE_BYTES_MAX);
  const frames: Uint8Array[] = [];
  let at = 0;
  let failedAt = -1;
  try {
    for (const n of chunkSizes(bytes)) {
      const res = dec.push(Buffer.from(bytes.subarray(at, at + n)));
      at += n;
      for (const f of res.frames) {
        if (f.length > MESSAGE_BYTES_MAX)
          throw new FuzzViolation('unbounded', `frame of ${f.length} B delivered`);
        frames.push(Uint8Array.from(f));
      }
      if (!res.ok) {
        if (res.claimedBytes <= MESSAGE_BYTES_MAX) {
          throw new FuzzViolation(
            'round-trip',
            `refused a frame claiming ${res.claimedBytes} B, within the limit`,
          );
        }
        failedAt = at;
        break;
      }
      if (dec.pendingBytes > MESSAGE_BYTES_MAX + FRAME_HEADER_BYTES + CHUNK_BYTES_MAX) {
        throw new FuzzViolation('unbounded', `decoder holds ${dec.pendingBytes} B`);
      }
    }
  } catch (e) {
    if (e instanceof FuzzViolation) throw e;
    throw new FuzzViolation('threw', `FrameDecoder threw ${String(e)}`);
  }
  // What was delivered is exactly a prefix of the stream, re-framed.
  const total = frames.reduce((n, f) => n + f.length, 0);
  const reframed = encodeFrames(frames, total);
  if (Buffer.compare(reframed, bytes.subarray(0, reframed.length)) !== 0) {
    throw new FuzzViolation('round-trip', 'delivered frames are not the frames that were sent');
  }
  if (failedAt >= 0) return 'rejected';
  if (reframed.length + dec.pendingBytes !== bytes.length) {
    throw new FuzzViolation(
      'round-trip',
      `${bytes.length - reframed.length - dec.pendingBytes} bytes vanished`,
    );
  }
  return dec.pendingBytes === 0 ? 'accepted' : 'rejected';
}

const framesArb = fc.array(fc.uint8Array({ maxLength: MESSAGE_BYTES_MAX }), { maxLength: 6 }).map(
  (ms) =>
    new Uint8Array(
      encodeFrames(
        ms,
        ms.reduce((n, m) => n + m.length, 0),
      ),
    ),
);

export const transportTargets: FuzzTarget[] = [
  {
    name: 'transport.frames',
    valid: framesArb,
    inputs: hostileInputs(framesArb, 2048),
    run: runFrames,
    // A stream has no size limit of its own; the per-frame limit is what the property checks.
    oversized: () => null,
  },
];
