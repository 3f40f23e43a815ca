// Length-prefixed framing for stream transports: each frame is a u32 big-endian
// payload length, then the payload. The decoder is incremental (bytes arrive in
// arbitrary chunks) and checks the claimed length against the limit as soon as the
// 4-byte header is complete, so a hostile peer cannot make us allocate or wait for
// more than `messageBytesMax` per connection.

export const FRAME_HEADER_BYTES = 4;

export type FrameDecodeResult =
  | { ok: true; frames: Buffer[] }
  | { ok: false; claimedBytes: number; frames: Buffer[] };

export class FrameDecoder {
  /** Chunks of a frame not yet complete; concatenated once, when the frame is complete. */
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Bytes needed before parsing can make progress: a header, or a header plus its payload. */
  private neededBytes = FRAME_HEADER_BYTES;

  constructor(private readonly messageBytesMax: number) {}

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
      if (length > this.messageBytesMax) {
        this.chunks = [];
        this.bufferedBytes = 0;
        return { ok: false, claimedBytes: length, frames };
      }
      if (left - FRAME_HEADER_BYTES < length) {
        this.neededBytes = FRAME_HEADER_BYTES + length;
        break;
      }
      frames.push(buf.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length));
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
