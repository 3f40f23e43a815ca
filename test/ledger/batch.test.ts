import assert from 'node:assert/strict';
import { decodeBatch, encodeBatch } from '../../ledger/batch.js';

describe('ledger/batch', () => {
  const txs = [Uint8Array.of(1, 2, 3), new Uint8Array(200).fill(7), Uint8Array.of(9)];
  const encoded = encodeBatch({ timestampMs: 42n, txs });

  it('decodes txs as copies by default and as views into the input when asked, with equal bytes', () => {
    const copies = decodeBatch(encoded);
    const views = decodeBatch(encoded, undefined, { txViews: true });
    assert.ok(copies.ok && views.ok);
    assert.deepEqual(views.value, copies.value);
    assert.deepEqual(views.value.txs, txs);
    for (const t of copies.value.txs) assert.notEqual(t.buffer, encoded.buffer);
    for (const t of views.value.txs) assert.equal(t.buffer, encoded.buffer);
  });

  it('refuses the same bad input with views as without', () => {
    for (const bad of [encoded.subarray(0, encoded.length - 1), Uint8Array.of(...encoded, 0)]) {
      const copies = decodeBatch(bad);
      const views = decodeBatch(bad, undefined, { txViews: true });
      assert.equal(copies.ok, false);
      assert.deepEqual(views, copies);
    }
  });
});
