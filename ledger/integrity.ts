// Start-up integrity check of a validator's data directory (the LevelDB ledger).
//
// Two layers, because they catch different damage:
// 1. Files: every checksum LevelDB wrote (tables, write-ahead log, MANIFEST) is verified
//    before the database is opened, and every live table must exist with the size the
//    MANIFEST recorded. classic-level runs LevelDB without paranoid checks and without
//    verify_checksums, so without this a flipped byte can be served as data and a damaged
//    log record silently dropped on open.
// 2. Ledger: the newest blocks are re-hashed and linked (each block's hash is its child's
//    prevHash, the tip record names the newest block's hash and state digest, block bodies
//    match their headers' tx root and results hash, the hash index points back). This
//    catches damage with valid checksums: a bug, or an edit of the files.
//
// The node runs this before opening the store; on damage it refuses to start with a
// message naming the damage and the ways to recover, instead of serving wrong data.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { blockHash, checkBlockBody } from './block.js';
import { bytesEqual, toHex } from './codec/binary.js';
import { FormatError, replayManifest, scanLog, verifyTable } from './leveldb-files.js';
import { LedgerStore, LedgerStoreError } from './store.js';

export type DamageKind =
  | 'missing-file'
  | 'truncated-file'
  | 'checksum-mismatch'
  | 'bad-format'
  | 'torn-log-tail'
  | 'unopenable'
  | 'genesis-mismatch'
  | 'missing-block'
  | 'chain-break'
  | 'tip-mismatch'
  | 'body-mismatch'
  | 'index-mismatch';

export interface Damage {
  kind: DamageKind;
  /** 'fatal': the node must not start on this directory; 'warning': expected after a crash, self-healing. */
  severity: 'fatal' | 'warning';
  /** File name inside the data directory, when the damage is in one file. */
  file?: string;
  offset?: number;
  height?: bigint;
  detail: string;
}

export interface IntegrityReport {
  ok: boolean;
  dir: string;
  /** No database yet: a new validator. */
  empty: boolean;
  tablesChecked: number;
  logsChecked: number;
  bytesChecked: number;
  blocksChecked: number;
  tipHeight: bigint | null;
  damage: Damage[];
  /** What an operator can do, filled in when the report is not ok. */
  recovery: string[];
}

export interface CheckDataDirOptions {
  /** When given, a directory made with another genesis is reported. */
  genesisHash?: Uint8Array;
  /** Newest blocks to re-hash and link (default 1000; Infinity for the whole chain). Files are always checked whole. */
  blocksToVerify?: number;
  /** Home directory used in the recovery commands (default: the data directory's parent). */
  home?: string;
}

export const BLOCKS_TO_VERIFY_DEFAULT = 1000;

/** The directory is in use by a running validator: stop it before checking. */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  readonly code = 'data-dir-locked';
  constructor(readonly dir: string) {
    super(`data directory ${dir} is in use by a running validator; stop it before checking`);
  }
}

/** Thrown by assertDataDirIntact; `report` holds the details, `message` the operator-facing text. */
export class DataDirCorruptError extends Error {
  override readonly name = 'DataDirCorruptError';
  readonly code = 'data-dir-corrupt';
  constructor(readonly report: IntegrityReport) {
    super(formatIntegrityReport(report));
  }
}

const TABLE_RE = /^(\d+)\.(ldb|sst)$/;
const LOG_RE = /^(\d+)\.log$/;
// The store's genesis-hash key (ledger/store.ts key layout: 'G').
const GENESIS_KEY = Uint8Array.of(0x47);

export async function checkDataDir(dir: string, opts: CheckDataDirOptions = {}): Promise<IntegrityReport> {
  const report: IntegrityReport = {
    ok: true,
    dir,
    empty: false,
    tablesChecked: 0,
    logsChecked: 0,
    bytesChecked: 0,
    blocksChecked: 0,
    tipHeight: null,
    damage: [],
    recovery: [],
  };
  const add = (d: Damage) => report.damage.push(d);

  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...report, empty: true };
    throw e;
  }
  const relevant = names.filter(
    (n) => n === 'CURRENT' || n.startsWith('MANIFEST-') || TABLE_RE.test(n) || LOG_RE.test(n),
  );
  if (relevant.length === 0) return { ...report, empty: true };

  await checkFiles(dir, names, report, add);
  if (!report.damage.some((d) => d.severity === 'fatal')) await checkLedger(dir, opts, report, add);

  report.ok = !report.damage.some((d) => d.severity === 'fatal');
  if (!report.ok) report.recovery = recoveryOptions(opts.home ?? join(dir, '..'));
  return report;
}

/** Runs checkDataDir and throws DataDirCorruptError when the directory must not be used. */
export async function assertDataDirIntact(
  dir: string,
  opts: CheckDataDirOptions = {},
): Promise<IntegrityReport> {
  const report = await checkDataDir(dir, opts);
  if (!report.ok) throw new DataDirCorruptError(report);
  return report;
}

async function checkFiles(dir: string, names: string[], report: IntegrityReport, add: (d: Damage) => void) {
  if (!names.includes('CURRENT')) {
    add({
      kind: 'missing-file',
      severity: 'fatal',
      file: 'CURRENT',
      detail: 'CURRENT (the pointer to the MANIFEST) is missing',
    });
    return;
  }
  const current = (await readFile(join(dir, 'CURRENT'), 'utf8')).trim();
  if (!/^MANIFEST-\d+$/.test(current)) {
    add({
      kind: 'bad-format',
      severity: 'fatal',
      file: 'CURRENT',
      detail: `CURRENT does not name a MANIFEST`,
    });
    return;
  }
  if (!names.includes(current)) {
    add({
      kind: 'missing-file',
      severity: 'fatal',
      file: current,
      detail: `${current}, named by CURRENT, is missing`,
    });
    return;
  }
  const manifestBytes = await readFile(join(dir, current));
  report.bytesChecked += manifestBytes.length;
  const manifestScan = scanLog(manifestBytes);
  if (manifestScan.damage !== null) {
    add({
      kind: 'checksum-mismatch',
      severity: 'fatal',
      file: current,
      offset: manifestScan.damageAt ?? undefined,
      detail: `${current}: ${manifestScan.damage} at offset ${manifestScan.damageAt}`,
    });
    return;
  }
  let manifest: ReturnType<typeof replayManifest>;
  try {
    manifest = replayManifest(manifestScan.records);
  } catch (e) {
    add({
      kind: 'bad-format',
      severity: 'fatal',
      file: current,
      detail: `${current}: ${(e as Error).message}`,
    });
    return;
  }

  const tableFiles = new Map<number, string>();
  for (const n of names) {
    const m = TABLE_RE.exec(n);
    if (m) tableFiles.set(Number(m[1]), n);
  }
  for (const [number, size] of manifest.tables) {
    const name = tableFiles.get(number);
    const expectedName = `${String(number).padStart(6, '0')}.ldb`;
    if (name === undefined) {
      add({
        kind: 'missing-file',
        severity: 'fatal',
        file: expectedName,
        detail: `table ${expectedName} is listed in ${current} but missing`,
      });
      continue;
    }
    const bytes = await readFile(join(dir, name));
    report.bytesChecked += bytes.length;
    if (bytes.length !== size) {
      add({
        kind: bytes.length < size ? 'truncated-file' : 'bad-format',
        severity: 'fatal',
        file: name,
        detail: `table ${name} is ${bytes.length} bytes, ${current} says ${size}`,
      });
      continue;
    }
    try {
      verifyTable(bytes);
      report.tablesChecked++;
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      add({
        kind: /checksum/.test(e.message) ? 'checksum-mismatch' : 'bad-format',
        severity: 'fatal',
        file: name,
        detail: `table ${name}: ${e.message}`,
      });
    }
  }

  // Logs older than the MANIFEST's log number are already in tables and may linger harmlessly.
  for (const n of names) {
    const m = LOG_RE.exec(n);
    if (!m) continue;
    const number = Number(m[1]);
    if (number < manifest.logNumber && number !== manifest.prevLogNumber) continue;
    const bytes = await readFile(join(dir, n));
    report.bytesChecked += bytes.length;
    report.logsChecked++;
    const scan = scanLog(bytes);
    if (scan.damage !== null) {
      add({
        kind: 'checksum-mismatch',
        severity: 'fatal',
        file: n,
        offset: scan.damageAt ?? undefined,
        detail: `write-ahead log ${n}: ${scan.damage} at offset ${scan.damageAt}`,
      });
    } else if (scan.tornTailAt !== null) {
      add({
        kind: 'torn-log-tail',
        severity: 'warning',
        file: n,
        offset: scan.tornTailAt,
        detail:
          `write-ahead log ${n} ends inside a record at offset ${scan.tornTailAt}: a write cut by a crash. ` +
          'LevelDB drops it; that block was never acknowledged and peers supply it by state transfer',
      });
    }
  }
}

async function checkLedger(
  dir: string,
  opts: CheckDataDirOptions,
  report: IntegrityReport,
  add: (d: Damage) => void,
) {
  let genesisHash: Uint8Array | undefined;
  const raw = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await raw.open({ createIfMissing: false });
    genesisHash = await raw.get(GENESIS_KEY);
  } catch (e) {
    // A running validator holds the directory: that is not damage, and the files read
    // above may have been mid-write. The check belongs before the node opens its store.
    const cause = (e as { cause?: { code?: unknown } }).cause;
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
      throw new DataDirLockedError(dir);
    }
    add({
      kind: 'unopenable',
      severity: 'fatal',
      detail: `LevelDB refused to open the directory: ${(e as Error).message}`,
    });
    return;
  } finally {
    await raw.close().catch(() => {});
  }
  if (genesisHash === undefined) {
    add({
      kind: 'bad-format',
      severity: 'fatal',
      detail: 'the database has no genesis record: not a ledger, or damaged',
    });
    return;
  }
  if (opts.genesisHash && !bytesEqual(genesisHash, opts.genesisHash)) {
    add({
      kind: 'genesis-mismatch',
      severity: 'fatal',
      detail: `the directory belongs to genesis ${toHex(genesisHash)}, not ${toHex(opts.genesisHash)}`,
    });
    return;
  }

  let store: LedgerStore;
  try {
    store = await LedgerStore.open(dir, { genesisHash });
  } catch (e) {
    add({
      kind: 'unopenable',
      severity: 'fatal',
      detail: `the ledger store refused to open: ${(e as Error).message}`,
    });
    return;
  }
  try {
    const tip = store.latestTip();
    report.tipHeight = tip.height;
    const depth = opts.blocksToVerify ?? BLOCKS_TO_VERIFY_DEFAULT;
    const lowest =
      depth >= Number(tip.height) ? 1n : tip.height - BigInt(Math.max(0, Math.floor(depth))) + 1n;
    // Walk down from the tip: each block's hash must be what its child (or the tip record) names.
    let expectedHash = tip.hash;
    for (let h = tip.height; h >= lowest && h >= 1n; h--) {
      const where = h === tip.height ? 'the tip record' : `block ${h + 1n}'s prevHash`;
      let block: Awaited<ReturnType<LedgerStore['getBlock']>>;
      try {
        block = await store.getBlock(h);
      } catch (e) {
        const detail = e instanceof LedgerStoreError ? e.message : `block ${h}: ${(e as Error).message}`;
        add({ kind: 'missing-block', severity: 'fatal', height: h, detail });
        return;
      }
      if (block === null) {
        add({
          kind: 'missing-block',
          severity: 'fatal',
          height: h,
          detail: `block ${h} is missing below the tip`,
        });
        return;
      }
      report.blocksChecked++;
      const hash = blockHash(block.header);
      if (block.header.height !== h) {
        add({
          kind: 'bad-format',
          severity: 'fatal',
          height: h,
          detail: `block stored at height ${h} says height ${block.header.height}`,
        });
        return;
      }
      if (!bytesEqual(hash, expectedHash)) {
        add({
          kind: h === tip.height ? 'tip-mismatch' : 'chain-break',
          severity: 'fatal',
          height: h,
          detail: `block ${h} hashes to ${toHex(hash)}, but ${where} says ${toHex(expectedHash)}`,
        });
        return;
      }
      if (h === tip.height && !bytesEqual(block.header.stateDigest, tip.stateDigest)) {
        add({
          kind: 'tip-mismatch',
          severity: 'fatal',
          height: h,
          detail: `the tip record's state digest differs from block ${h}'s`,
        });
        return;
      }
      const body = checkBlockBody(block);
      if (!body.ok) {
        add({ kind: 'body-mismatch', severity: 'fatal', height: h, detail: `block ${h}: ${body.error}` });
        return;
      }
      const byHash = await store.getBlockByHash(hash).catch(() => null);
      if (byHash === null || byHash.header.height !== h) {
        add({
          kind: 'index-mismatch',
          severity: 'fatal',
          height: h,
          detail: `the hash index does not lead back to block ${h}`,
        });
        return;
      }
      expectedHash = block.header.prevHash;
    }
    if (lowest <= 1n && tip.height >= 1n && !bytesEqual(expectedHash, genesisHash)) {
      add({
        kind: 'chain-break',
        severity: 'fatal',
        height: 1n,
        detail: `block 1's prevHash is not the genesis hash`,
      });
    }
  } finally {
    await store.close();
  }
}

function recoveryOptions(home: string): string[] {
  return [
    `Restore from a backup: hybster restore --home ${home} --from <snapshot file>; on start the validator ` +
      'fetches the blocks after the snapshot from its peers by state transfer.',
    `Or rebuild from peers: move the damaged directory aside (keep it for analysis), then start; the validator ` +
      'fetches the whole chain from its peers by state transfer and checks every block against its commit ' +
      "certificate. The directory also held this validator's consensus state (view, TrInX counters): read the " +
      'unsafe-reset notes before doing this on a validator of a running network.',
    'Do not start the validator on the damaged directory: it would serve or build on wrong data.',
  ];
}

/** Operator-facing text: what is damaged, where, and how to recover. */
export function formatIntegrityReport(r: IntegrityReport): string {
  if (r.ok) {
    const warn = r.damage.map((d) => `\n  warning: ${d.detail}`).join('');
    return `data directory ${r.dir} is intact (${r.tablesChecked} tables, ${r.logsChecked} logs, ${r.blocksChecked} blocks checked)${warn}`;
  }
  const lines = [`data directory ${r.dir} is damaged:`];
  for (const d of r.damage)
    lines.push(`  ${d.severity === 'fatal' ? 'damage' : 'warning'} [${d.kind}]: ${d.detail}`);
  lines.push('Recovery options:');
  for (const [i, s] of r.recovery.entries()) lines.push(`  ${i + 1}. ${s}`);
  return lines.join('\n');
}
