// unsafe-reset: wipe a validator's ledger database, keep its identity.
//
// Intended CLI (wired by node/cli.ts):
//   hybster unsafe-reset --home <dir> [--yes]
// Without --yes it prints the plan (`planUnsafeReset(...).message`) and changes nothing.
// With --yes it deletes <home>/data and prints "Deleted <home>/data; kept config.json,
// genesis.json and keys/. The validator will sync from its peers on the next start."
//
// Why "unsafe": <home>/data also holds the consensus metadata (view, TrInX counters).
// Hybster's hybrid fault model assumes a TrInX counter never goes back; after a reset the
// software TrInX restarts from zero, so this validator could certify an order number it
// already certified before. Do it only when the whole network is reset, or for a validator
// that is removed from (or has never voted in) the current view, and never to "fix" a
// validator that is merely behind: a restarted validator catches up by state transfer.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { OpsError } from './errors.js';
import { dataDirOf, dirUsage, exists, isDataDirLocked } from './level-dir.js';

export interface ResetPlan {
  home: string;
  /** Paths that will be deleted. */
  deletes: string[];
  /** Paths that stay (identity and configuration). */
  keeps: string[];
  dataBytes: number;
  dataFiles: number;
  /** What the CLI prints before asking for --yes. */
  message: string;
}

/** Names in a validator home that make us sure it is one (and not, say, $HOME). */
const HOME_MARKERS = ['config.json', 'genesis.json', 'keys'];

/** Describes the reset without changing anything. Throws OpsError('bad-home') for a directory that is not a validator home. */
export async function planUnsafeReset(home: string): Promise<ResetPlan> {
  const present = new Set(await readdir(home).catch(() => [] as string[]));
  if (!HOME_MARKERS.some((m) => present.has(m))) {
    throw new OpsError(
      'bad-home',
      `${home} does not look like a validator home (no config.json, genesis.json or keys/); refusing to delete anything`,
    );
  }
  const dataDir = dataDirOf(home);
  const usage = await dirUsage(dataDir);
  // Everything in the home except the data dir and our own leftovers from backup/restore.
  const keeps = [...present]
    .filter((n) => n !== 'data' && !n.startsWith('data.restoring-') && !n.startsWith('.backup-copy-'))
    .sort()
    .map((n) => join(home, n));
  const deletes = (await exists(dataDir)) ? [dataDir] : [];
  for (const n of present) {
    if (n.startsWith('data.restoring-') || n.startsWith('.backup-copy-')) deletes.push(join(home, n));
  }
  const message =
    deletes.length === 0
      ? `${dataDir} does not exist; nothing to delete.`
      : `This DELETES ${dataDir} (${usage.files} files, ${usage.bytes} bytes): every block, all state and the ` +
        `consensus metadata (view, TrInX counters). It keeps ${keeps.map((k) => k.slice(home.length + 1)).join(', ')}. ` +
        'The TrInX counters restart from zero: only reset a validator when the whole network is reset or the ' +
        'validator is not voting; a validator that is merely behind catches up by itself.';
  return { home, deletes, keeps, dataBytes: usage.bytes, dataFiles: usage.files, message };
}

export interface ResetResult extends ResetPlan {
  deleted: string[];
}

/** Deletes the data directory (after `planUnsafeReset`'s checks). Requires `yes: true`. */
export async function unsafeReset(home: string, options: { yes?: boolean } = {}): Promise<ResetResult> {
  const plan = await planUnsafeReset(home);
  if (plan.deletes.length === 0) return { ...plan, deleted: [] };
  if (options.yes !== true) {
    throw new OpsError('confirmation-required', `${plan.message} Re-run with --yes to proceed.`);
  }
  if (await isDataDirLocked(dataDirOf(home))) {
    throw new OpsError(
      'data-dir-locked',
      `${dataDirOf(home)} is in use by a running validator; stop it first`,
    );
  }
  for (const p of plan.deletes) await rm(p, { recursive: true, force: true });
  return { ...plan, deleted: plan.deletes };
}
