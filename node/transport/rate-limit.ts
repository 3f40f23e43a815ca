// Per-peer rate limiting for replica channels: two token buckets (messages and
// bytes). A validator that floods is cut off rather than slowed down, because an
// honest replica never needs more than the configured rate and every byte we accept
// costs a MAC check and a decode.

export interface RateLimitOptions {
  messagesPerSecondMax: number;
  bytesPerSecondMax: number;
  /** Bucket capacity in seconds of rate: how long a peer may burst above the rate before it is cut off. */
  burstSeconds: number;
}

export const RATE_LIMIT_DEFAULT: RateLimitOptions = {
  messagesPerSecondMax: 100_000,
  bytesPerSecondMax: 256 * 1024 * 1024,
  burstSeconds: 1,
};

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    nowMs: number,
  ) {
    if (!(ratePerSecond > 0) || !(capacity > 0))
      throw new RangeError('token bucket rate and capacity must be > 0');
    this.tokens = capacity;
    this.lastMs = nowMs;
  }

  /** Takes `n` tokens if available; returns false (taking none) otherwise. */
  take(n: number, nowMs: number): boolean {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(
        this.capacity,
        this.tokens + ((nowMs - this.lastMs) / 1000) * this.ratePerSecond,
      );
      this.lastMs = nowMs;
    }
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

export class PeerRateLimiter {
  private readonly messages: TokenBucket;
  private readonly bytes: TokenBucket;

  constructor(options: RateLimitOptions, nowMs: number) {
    this.messages = new TokenBucket(
      options.messagesPerSecondMax,
      options.messagesPerSecondMax * options.burstSeconds,
      nowMs,
    );
    this.bytes = new TokenBucket(
      options.bytesPerSecondMax,
      options.bytesPerSecondMax * options.burstSeconds,
      nowMs,
    );
  }

  /** Accounts one received message; false means the peer is over its rate. */
  admit(messageBytes: number, nowMs: number): boolean {
    return this.messages.take(1, nowMs) && this.bytes.take(messageBytes, nowMs);
  }
}
