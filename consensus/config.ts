// Consensus parameters (from genesis). Every growing structure in the core is bounded by one of these.

export interface ConsensusConfig {
  /** Number of validators, n = 2f + 1. */
  readonly n: number;
  /** Parallel ordering instances; pillar p owns order numbers o with o mod P == p. */
  readonly pillars: number;
  /** Checkpoint interval K: a checkpoint follows order o when (o + 1) mod K == 0. */
  readonly checkpointInterval: number;
  /** Window W: a leader may not propose o >= lowWatermark + W. */
  readonly window: number;
  /** Largest batch payload the core accepts, in bytes. */
  readonly batchBytesMax: number;
  /** Batches the leader queues per pillar before refusing proposals. */
  readonly pendingBatchesMax: number;
  /** Retransmission period of unacknowledged protocol messages (virtual ms). */
  readonly retransmitMs: number;
  /** First view-change timeout; doubles on each consecutive failed view change, up to viewTimeoutMsMax. */
  readonly viewTimeoutMs: number;
  readonly viewTimeoutMsMax: number;
  /** Prepares retransmitted to one follower per retransmission round. */
  readonly retransmitBurstMax: number;
}

export const DEFAULT_CONFIG: Omit<ConsensusConfig, 'n' | 'pillars'> = {
  checkpointInterval: 32,
  window: 128,
  batchBytesMax: 1 << 20,
  pendingBatchesMax: 64,
  retransmitMs: 100,
  viewTimeoutMs: 1000,
  viewTimeoutMsMax: 16_000,
  retransmitBurstMax: 32,
};

export function makeConfig(
  p: Partial<ConsensusConfig> & Pick<ConsensusConfig, 'n' | 'pillars'>,
): ConsensusConfig {
  const c: ConsensusConfig = { ...DEFAULT_CONFIG, ...p };
  assertConfig(c);
  return c;
}

export function assertConfig(c: ConsensusConfig): void {
  const bad = (why: string): never => {
    throw new RangeError(`invalid consensus config: ${why}`);
  };
  if (!Number.isInteger(c.n) || c.n < 1 || c.n % 2 !== 1 || c.n > 1024) bad('n must be odd, 1..1023');
  if (!Number.isInteger(c.pillars) || c.pillars < 1 || c.pillars > 64) bad('pillars must be 1..64');
  if (c.window < c.pillars * 2 || c.window % c.pillars !== 0)
    bad('window must be a multiple of pillars, >= 2P');
  if (c.checkpointInterval < 1 || c.checkpointInterval * 2 > c.window) bad('window must be >= 2K');
  if (c.batchBytesMax < 1 || c.batchBytesMax > 64 << 20) bad('batchBytesMax out of range');
  if (c.pendingBatchesMax < 1) bad('pendingBatchesMax < 1');
  if (c.retransmitMs < 1 || c.viewTimeoutMs < c.retransmitMs || c.viewTimeoutMsMax < c.viewTimeoutMs) {
    bad('timeouts must satisfy retransmitMs <= viewTimeoutMs <= viewTimeoutMsMax');
  }
  if (c.retransmitBurstMax < 1) bad('retransmitBurstMax < 1');
}

export const faults = (c: ConsensusConfig): number => (c.n - 1) / 2;
export const leaderOf = (c: ConsensusConfig, view: bigint): number => Number(view % BigInt(c.n));

/** The smallest order number >= `from` that belongs to `pillar`. */
export function firstOrderAtOrAbove(c: ConsensusConfig, pillar: number, from: bigint): bigint {
  const P = BigInt(c.pillars);
  const rem = (((BigInt(pillar) - from) % P) + P) % P;
  return from + rem;
}

/** Largest encoded certificate: ids, counter, prev flag and value, value, MAC. */
const CERT_BYTES_MAX = 2 + 2 + 1 + 1 + 16 + 16 + 32;

/** Largest message the codec accepts: a NEW-VIEW carrying f+1 full histories plus the re-proposals. */
export function messageBytesMax(c: ConsensusConfig): number {
  const perPillarWindow = c.window / c.pillars;
  // pillar, view, order, batch length, the ORDER and the TOP certificate, and slack.
  const prepareBytesMax = c.batchBytesMax + 2 + 8 + 8 + 4 + 2 * CERT_BYTES_MAX + 64;
  const stableBytesMax = 1 + 8 + 32 + 32 + 4 + c.n * 36;
  // A view proof: view, digests, first order, top, one digest per slot and f + 1 MACs (<= n).
  const viewProofBytesMax = 8 + 32 + 8 + 8 + 4 + perPillarWindow * 32 + 4 + c.n * 36;
  const viewChangeBytesMax =
    2 +
    8 +
    8 +
    stableBytesMax +
    4 +
    perPillarWindow * prepareBytesMax +
    4 +
    perPillarWindow * viewProofBytesMax +
    2 * CERT_BYTES_MAX;
  return (
    1 +
    2 +
    8 +
    4 +
    (faults(c) + 1) * viewChangeBytesMax +
    4 +
    perPillarWindow * prepareBytesMax +
    CERT_BYTES_MAX
  );
}

/**
 * Throws when the largest consensus message cannot cross a transport whose frames carry at
 * most `frameBytesMax` bytes: a NEW-VIEW carries f + 1 histories of window / P full batches
 * plus the re-proposals, so window x batchBytesMax must be bounded for it to be sendable.
 * The node calls this with its transport's frame limit before starting.
 */
export function assertMessagesFit(c: ConsensusConfig, frameBytesMax: number): void {
  const need = messageBytesMax(c);
  if (need <= frameBytesMax) return;
  throw new RangeError(
    `invalid consensus config: a NEW-VIEW can reach ${need} bytes (f + 1 = ${faults(c) + 1} histories and the ` +
      `re-proposals, ${c.window / c.pillars} batches of up to ${c.batchBytesMax} bytes each) but transport frames ` +
      `carry at most ${frameBytesMax}; lower window or batchBytesMax (at this window, batchBytesMax <= ` +
      `${batchBytesMaxFitting(c, frameBytesMax)} fits) or raise the frame limit`,
  );
}

/** The largest batchBytesMax for which every message of `c` fits in `frameBytesMax` bytes (0 if none). */
export function batchBytesMaxFitting(c: ConsensusConfig, frameBytesMax: number): number {
  // messageBytesMax is linear in batchBytesMax: fixed + perBatchByte * batchBytesMax.
  const fixed = messageBytesMax({ ...c, batchBytesMax: 0 });
  const perByte = messageBytesMax({ ...c, batchBytesMax: 1 }) - fixed;
  return Math.max(0, Math.floor((frameBytesMax - fixed) / perByte));
}
