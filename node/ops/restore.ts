// Restore of a validator's ledger database from a snapshot file written by backup.
//
// Intended CLI (wired by node/cli.ts):
//   hybster restore --home <dir> --from <file.hybsnap> [--yes]
// Without --yes, when <home>/data exists, it prints what it would do and changes nothing:
//   "This replaces <home>/data (<n> files, <bytes> bytes) with the snapshot taken <time>
//    (height <h>). The current data is moved to <home>/data.pre-restore-<stamp>, not deleted.
//    Re-run with --yes to proceed."
// The validator must be stopped. After restore it starts from the snapshot's height and
// catches up with the network by state transfer.

import { rename, rm } from 'node:fs/promises';

import { ClassicLevel } from 'classic-level';
import { OpsError } from './errors.js';
import { dataDirOf, dirUsage, exists, genesisFileSha256, isDataDirLocked } from './level-dir.js';
import {
  DEFAULT_SNAPSHOT_LIMITS,
  readSnapshot,
  type SnapshotLimits,
  type SnapshotSummary,
  verifySnapshot,
} from './snapshot-file.js';

export interface RestoreOptions {
  /** Must be true to replace an existing data directory. */
  yes?: boolean;
  /** Hex genesis hash of this home; a snapshot that records another genesis is refused. */
  genesisHash?: string;
  limits?: SnapshotLimits;
  /** Bytes of key+value per LevelDB batch while writing; bounds memory. */
  batchBytesMax?: number;
}

export interface RestorePlan {
  dataDir: string;
  snapshot: SnapshotSummary;
  /** Present when a data directory exists and would be moved aside. */
  existing: { bytes: number; files: number; movedTo: string } | null;
  /** The message the CLI prints before asking for --yes. */
  message: string;
}

export interface RestoreResult extends RestorePlan {
  entriesWritten: number;
}

/** Verifies the snapshot and describes the restore without changing anything. */
export async function planRestore(
  home: string,
  file: string,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const dataDir = dataDirOf(home);
  const snapshot = await verifySnapshot(file, options.limits ?? DEFAULT_SNAPSHOT_LIMITS);
  if (options.genesisHash && snapshot.meta.genesisHash && options.genesisHash !== snapshot.meta.genesisHash) {
    throw new OpsError(
      'genesis-mismatch',
      `snapshot belongs to genesis ${snapshot.meta.genesisHash}, this home to ${options.genesisHash}`,
    );
  }
  const homeGenesis = await genesisFileSha256(home);
  if (snapshot.meta.genesisFileSha256 && homeGenesis && snapshot.meta.genesisFileSha256 !== homeGenesis) {
    throw new OpsError(
      'genesis-mismatch',
      `snapshot was taken from a home with another genesis.json (sha256 ${snapshot.meta.genesisFileSha256}, this home ${homeGenesis})`,
    );
  }
  if (await isDataDirLocked(dataDir)) {
    throw new OpsError('data-dir-locked', `${dataDir} is in use by a running validator; stop it first`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let existing: RestorePlan['existing'] = null;
  if (await exists(dataDir)) {
    existing = { ...(await dirUsage(dataDir)), movedTo: `${dataDir}.pre-restore-${stamp}` };
  }
  const taken = new Date(snapshot.createdMs).toISOString();
  const height = snapshot.meta.latestHeight ? ` (height ${snapshot.meta.latestHeight})` : '';
  const message = existing
    ? `This replaces ${dataDir} (${existing.files} files, ${existing.bytes} bytes) with the snapshot taken ${taken}${height}. ` +
      `The current data is moved to ${existing.movedTo}, not deleted.`
    : `This creates ${dataDir} from the snapshot taken ${taken}${height}.`;
  return { dataDir, snapshot, existing, message };
}

/**
 * Verifies `file`, writes its entries into a fresh database next to the data directory,
 * then swaps it into place. Requires `yes` when a data directory exists; the old one is
 * moved aside, never deleted. A failure at any point leaves `<home>/data` as it was.
 */
export async function restoreHome(
  home: string,
  file: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const plan = await planRestore(home, file, options);
  if (plan.existing && options.yes !== true) {
    throw new OpsError('confirmation-required', `${plan.message} Re-run with --yes to proceed.`);
  }
  const staging = `${plan.dataDir}.restoring-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  let entriesWritten = 0;
  try {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(staging, {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    await db.open({ createIfMissing: true, errorIfExists: true });
    try {
      const batchBytesMax = options.batchBytesMax ?? 4 * 1024 * 1024;
      let batch = db.batch();
      let batchBytes = 0;
      const it = readSnapshot(file, () => {}, options.limits ?? DEFAULT_SNAPSHOT_LIMITS);
      for (;;) {
        const step = await it.next();
        if (step.done) {
          // The file could have changed since planRestore verified it; the second pass checks again.
          if (step.value.sha256Hex !== plan.snapshot.sha256Hex) {
            throw new OpsError('bad-snapshot', 'snapshot changed while it was being restored');
          }
          break;
        }
        const [k, v] = step.value;
        batch.put(k, v);
        batchBytes += k.length + v.length;
        entriesWritten++;
        if (batchBytes >= batchBytesMax) {
          await batch.write({ sync: false });
          batch = db.batch();
          batchBytes = 0;
        }
      }
      // The last batch is synced so the restored database is durable before the swap.
      await batch.write({ sync: true });
    } finally {
      await db.close();
    }
    if (plan.existing) await rename(plan.dataDir, plan.existing.movedTo);
    await rename(staging, plan.dataDir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  return { ...plan, entriesWritten };
}
