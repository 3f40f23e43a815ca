import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeProposal, encodeProposal } from '../../node/proposal.js';

describe('node/proposal', () => {
  it('round-trips view, proposer and batch bytes', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 256 }),
        (view, proposer, batch) => {
          assert.deepEqual(decodeProposal(encodeProposal({ view, proposer, batch })), {
            view,
            proposer,
            batch,
          });
        },
      ),
    );
  });

  it('maps empty fill batches and garbage to view 0, proposer 0, unchanged bytes (same everywhere)', () => {
    const empty = new Uint8Array(0);
    assert.deepEqual(decodeProposal(empty), { view: 0n, proposer: 0, batch: empty });
    const junk = new Uint8Array([9, 9, 9]);
    assert.deepEqual(decodeProposal(junk), { view: 0n, proposer: 0, batch: junk });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        decodeProposal(b);
      }),
    );
  });
});
