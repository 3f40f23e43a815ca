import assert from 'node:assert/strict';
import { PeerRateLimiter, TokenBucket } from '../../../node/transport/rate-limit.js';

describe('rate limit', () => {
  it('lets a burst through up to capacity, then refills at the rate', () => {
    const bucket = new TokenBucket(100, 10, 0);
    const burst = Array.from({ length: 12 }, () => bucket.take(1, 0));
    assert.deepEqual(
      burst.filter((x) => x),
      Array(10).fill(true),
    );
    assert.equal(bucket.take(1, 5), false, 'half a token after 5 ms');
    assert.equal(bucket.take(1, 10), true, 'one token after 10 ms');
    assert.equal(bucket.take(1, 10_000), true);
    assert.deepEqual(
      Array.from({ length: 11 }, () => bucket.take(1, 10_000)).filter((x) => x).length,
      9,
      'refill never exceeds capacity',
    );
  });

  it('admits a peer within both its message and byte rates, and refuses it past either', () => {
    const byCount = new PeerRateLimiter(
      { messagesPerSecondMax: 10, bytesPerSecondMax: 1e9, burstSeconds: 1 },
      0,
    );
    assert.equal(Array.from({ length: 10 }, () => byCount.admit(1, 0)).every(Boolean), true);
    assert.equal(byCount.admit(1, 0), false);
    const byBytes = new PeerRateLimiter(
      { messagesPerSecondMax: 1e6, bytesPerSecondMax: 1000, burstSeconds: 1 },
      0,
    );
    assert.equal(byBytes.admit(600, 0), true);
    assert.equal(byBytes.admit(600, 0), false);
    assert.equal(byBytes.admit(600, 200), true);
  });
});
