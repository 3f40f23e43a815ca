// Typed failures of the operator commands (backup, restore, unsafe-reset). The CLI maps each
// code to a message and an exit status; nothing here calls process.exit or prints.

export type OpsErrorCode =
  /** A destructive step was asked for without `yes: true`; nothing was changed. */
  | 'confirmation-required'
  /** The data directory is held by a running validator (LevelDB LOCK); stop it or back up online. */
  | 'data-dir-locked'
  /** The data directory does not exist or holds no database. */
  | 'no-data-dir'
  /** The home directory misses a file the command relies on (config.json, genesis.json, keys/). */
  | 'bad-home'
  /** The snapshot file is not a snapshot, is truncated, or fails its checksum. */
  | 'bad-snapshot'
  /** The snapshot was taken from a chain with another genesis than this home's. */
  | 'genesis-mismatch'
  /** The target file or directory exists and the command would not overwrite it. */
  | 'target-exists'
  /** An entry is larger than the configured bound. */
  | 'oversized-entry'
  | 'io';

export class OpsError extends Error {
  override readonly name = 'OpsError';
  constructor(
    readonly code: OpsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `error` is classic-level's refusal to open a database another process holds. */
export function isLevelLocked(error: unknown): boolean {
  let e: unknown = error;
  // classic-level wraps LEVEL_LOCKED in LEVEL_DATABASE_NOT_OPEN; walk the cause chain.
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as Error & { code?: unknown }).code;
    if (code === 'LEVEL_LOCKED') return true;
    if (/lock/i.test(e.message) && /LOCK|held|resource temporarily unavailable/i.test(e.message)) return true;
    e = (e as Error & { cause?: unknown }).cause;
  }
  return false;
}
