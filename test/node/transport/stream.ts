// The test stream shared by the conformance suite and its peer process: message i
// carries i and a pattern derived from it, so loss, corruption and reordering all show.

/** Fills stream message i: every 4-byte word is a function of (i, word index), so corruption or reordering is caught. */
export function fillStreamMessage(target: Uint8Array, i: number): void {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint32(0, i);
  for (let w = 4; w + 4 <= target.length; w += 4) view.setUint32(w, (Math.imul(i, 0x9e3779b1) + w) >>> 0);
}

export function checkStreamMessage(m: Uint8Array, i: number, size: number): boolean {
  if (m.length !== size) return false;
  const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (view.getUint32(0) !== i) return false;
  for (let w = 4; w + 4 <= m.length; w += 4) {
    if (view.getUint32(w) !== (Math.imul(i, 0x9e3779b1) + w) >>> 0) return false;
  }
  return true;
}
