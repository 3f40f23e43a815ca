import assert from 'node:assert/strict';
import { PeerPenaltyBox } from '../../../node/transport/penalty-box.js';

describe('PeerPenaltyBox', () => {
  let nowMs = 0;
  const clock = () => nowMs;
  beforeEach(() => {
    nowMs = 1_000_000;
  });

  it('refuses a penalized peer until its penalty runs out', () => {
    const box = new PeerPenaltyBox({ penaltyMsMin: 1_000 }, clock);
    assert.equal(box.isPenalized(1), false);
    assert.equal(box.penalize(1, 'bad-mac'), 1_000);
    assert.equal(box.isPenalized(1), true);
    assert.equal(box.reason(1), 'bad-mac');
    assert.equal(box.isPenalized(2), false, 'other peers are unaffected');
    nowMs += 999;
    assert.equal(box.remainingMs(1), 1);
    nowMs += 1;
    assert.equal(box.isPenalized(1), false);
  });

  it('doubles the penalty for repeat offenses up to the cap, and forgets after a quiet period', () => {
    const box = new PeerPenaltyBox(
      { penaltyMsMin: 1_000, penaltyMsMax: 5_000, forgetAfterMs: 60_000 },
      clock,
    );
    const penalties = [1, 2, 3, 4, 5].map(() => box.penalize(7, 'flood'));
    assert.deepEqual(penalties, [1_000, 2_000, 4_000, 5_000, 5_000]);
    nowMs += 60_000;
    assert.equal(box.penalize(7, 'flood'), 1_000);
  });

  it('remembers at most entriesMax peers, dropping the oldest', () => {
    const box = new PeerPenaltyBox({ entriesMax: 3, penaltyMsMin: 10_000 }, clock);
    for (let peer = 0; peer < 5; peer++) box.penalize(peer, 'x');
    assert.equal(box.size, 3);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((p) => box.isPenalized(p)),
      [false, false, true, true, true],
    );
  });
});
