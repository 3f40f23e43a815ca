// Length-prefixed framing for stream transports: each frame is a u32 big-endian
// payload length, then the payload. The decoder is incremental (bytes arrive in
// arbitrary chunks) and checks the claimed length against the limit as soon as the
// 4-byte header is complete, so a hostile peer cannot make us allocate or wait for
// more than `messageBytesMax` per connection.

export const FRAME_HEADER_BYTES = 4;

export type FrameDecodeResult =
  | { ok: true; frames: Buffer[] }
  | { ok: false; claimedBytes: number; limitBytes: number; frames: Buffer[] };

export class FrameDecoder {
  /** Chunks of a frame not yet complete; concatenated once, when the frame is complete. */
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Bytes needed before parsing can make progress: a header, or a header plus its payload. */
  private neededBytes = FRAME_HEADER_BYTES;

  /** Frames still under the tighter limit set by `restrictNext`. */
  private restrictedFrames = 0;
  private restrictedBytesMax = 0;

  constructor(private readonly messageBytesMax: number) {}

  /**
   * The next `frames` frames may be at most `bytesMax` bytes (capped by messageBytesMax);
   * later ones get the normal limit again. Lets a handshake bound what an unauthenticated
   * peer can make us buffer without racing the first large frame after it.
   */
  restrictNext(frames: number, bytesMax: number): void {
    this.restrictedFrames = frames;
    this.restrictedBytesMax = Math.min(bytesMax, this.messageBytesMax);
  }

  /** Bytes held for an incomplete frame (bounded by messageBytesMax + one read chunk). */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /**
   * Feeds one chunk; returns every frame it completes, in order. Frames are views into
   * the received chunks (no copy). After `ok: false` the stream is unusable: close it.
   */
  push(chunk: Buffer): FrameDecodeResult {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    // neededBytes > 4 only once the pending frame's header was read and checked, so
    // waiting here never waits on an unchecked length.
    if (this.bufferedBytes < this.neededBytes) return { ok: true, frames: [] };
    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.bufferedBytes);
    const frames: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const left = buf.length - offset;
      if (left < FRAME_HEADER_BYTES) {
        this.neededBytes = FRAME_HEADER_BYTES;
        break;
      }
      const length = buf.readUInt32BE(offset);
      const limit = this.restrictedFrames > 0 ? this.restrictedBytesMax : this.messageBytesMax;
      if (length > limit) {
        this.chunks = [];
        this.bufferedBytes = 0;
        return { ok: false, claimedBytes: length, limitBytes: limit, frames };
      }
      if (left - FRAME_HEADER_BYTES < length) {
        this.neededBytes = FRAME_HEADER_BYTES + length;
        break;
      }
      frames.push(buf.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length));
      if (this.restrictedFrames > 0) this.restrictedFrames -= 1;
      offset += FRAME_HEADER_BYTES + length;
    }
    const rest = buf.subarray(offset);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return { ok: true, frames };
  }
}

/** Encodes frames into one buffer (used to coalesce many small sends into one socket write). */
export function encodeFrames(messages: readonly Uint8Array[], totalPayloadBytes: number): Buffer {
  const out = Buffer.allocUnsafe(totalPayloadBytes + FRAME_HEADER_BYTES * messages.length);
  let offset = 0;
  for (const m of messages) {
    out.writeUInt32BE(m.length, offset);
    out.set(m, offset + FRAME_HEADER_BYTES);
    offset += FRAME_HEADER_BYTES + m.length;
  }
  return out;
}

export function encodeFrameHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  return h;
}
