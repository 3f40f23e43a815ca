// Keeps one outbound connection to a peer endpoint up: connect, hand the connection
// to the owner (who typically runs the secure-channel handshake on it), and when it
// ends or a connect fails, try again after an exponential backoff with jitter. The
// jitter spreads reconnects of many validators after a common failure (a restarted
// peer would otherwise be hit by everyone at the same instant).
import type { Transport, TransportConnection } from './types.js';

export interface BackoffOptions {
  /** First retry delay. */
  delayMsMin: number;
  /** Delays grow by `factor` per failed attempt up to this cap. */
  delayMsMax: number;
  factor: number;
}

export const BACKOFF_DEFAULT: BackoffOptions = { delayMsMin: 50, delayMsMax: 5_000, factor: 2 };

/**
 * The delay before retry number `attempt` (0-based): min * factor^attempt capped at max,
 * then "equal jitter" — half fixed, half random — so the delay never collapses to 0
 * (which full jitter allows) but peers still spread out. `random` returns [0, 1).
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.delayMsMax, options.delayMsMin * options.factor ** Math.min(attempt, 64));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export interface DialerOptions {
  backoff?: Partial<BackoffOptions>;
  /** Jitter source, injectable for tests; [0, 1). */
  random?: () => number;
  /** A connection that stayed up this long resets the backoff to its first step. */
  stableMs?: number;
  /** Give up after this many consecutive failures (connect or setup); Infinity by default. */
  attemptsMax?: number;
}

export type DialerEvent =
  | { type: 'connected'; conn: TransportConnection }
  | { type: 'failed'; attempt: number; error: unknown; retryInMs: number }
  | { type: 'disconnected'; error?: unknown }
  | { type: 'gave-up'; attempts: number };

/**
 * `setup` runs on every new connection (e.g. the handshake); if it throws, the
 * connection is closed and counts as a failed attempt. Events are for logs and metrics.
 */
export class ReconnectingDialer {
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly stableMs: number;
  private readonly attemptsMax: number;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private current: TransportConnection | undefined;
  private readonly listeners: ((e: DialerEvent) => void)[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly endpoint: string,
    private readonly setup: (conn: TransportConnection) => Promise<void> | void,
    options: DialerOptions = {},
  ) {
    this.backoff = { ...BACKOFF_DEFAULT, ...options.backoff };
    this.random = options.random ?? Math.random;
    this.stableMs = options.stableMs ?? 1_000;
    this.attemptsMax = options.attemptsMax ?? Number.POSITIVE_INFINITY;
  }

  onEvent(cb: (e: DialerEvent) => void): void {
    this.listeners.push(cb);
  }

  /** The live connection, if any. */
  get connection(): TransportConnection | undefined {
    return this.current;
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.attempt();
  }

  /** Stops retrying and closes the current connection. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.current?.close();
  }

  private emit(e: DialerEvent): void {
    for (const cb of this.listeners) cb(e);
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    let conn: TransportConnection | undefined;
    try {
      conn = await this.transport.connect(this.endpoint);
      if (this.stopped) {
        await conn.close();
        return;
      }
      let ended = false;
      let endError: unknown;
      conn.onClose((error) => {
        ended = true;
        endError = error;
      });
      await this.setup(conn);
      if (ended) throw endError ?? new Error('connection closed during setup');
    } catch (error) {
      await conn?.close();
      this.scheduleRetry(error);
      return;
    }
    const up = conn;
    const since = Date.now();
    this.current = up;
    up.onClose((error) => {
      this.current = undefined;
      if (this.stopped) return;
      if (Date.now() - since >= this.stableMs) this.failures = 0;
      this.emit({ type: 'disconnected', error });
      this.scheduleRetry(error, false);
    });
    this.emit({ type: 'connected', conn: up });
  }

  private scheduleRetry(error: unknown, countsAsFailure = true): void {
    if (this.stopped) return;
    const attempt = this.failures;
    if (countsAsFailure && attempt + 1 >= this.attemptsMax) {
      this.emit({ type: 'gave-up', attempts: attempt + 1 });
      this.stopped = true;
      return;
    }
    // A disconnect after a short-lived connection still backs off, so a peer that
    // accepts and drops at once is not hammered.
    this.failures += 1;
    const retryInMs = backoffDelayMs(attempt, this.backoff, this.random);
    if (countsAsFailure) this.emit({ type: 'failed', attempt, error, retryInMs });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.attempt();
    }, retryInMs);
  }
}
