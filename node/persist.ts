// Durable consensus state in the ledger store's metadata space (so backup, restore
// and unsafe-reset see it with the ledger). Per pillar: one header record (TrInX
// counters, view, view-change target, top, stable checkpoint, view proofs, prune mark)
// and the accepted prepares in a ring of window/P slots keyed by order, so overwriting a
// slot prunes what the checkpoint made obsolete without a delete operation.
//
// Records are binary (ledger/codec/binary.ts), versioned by their first byte; prepares,
// commits and accepts inside them are the consensus wire encoding, so they have one codec.
// Data dirs written before hold tagged JSON (bigint, bytes and maps survive the round
// trip), whose first byte is always '{': those records are still read, and replaced by
// binary ones as the pillar writes. JSON with base64 cost ~2.8 ms per full 170 KB batch.
import {
  type Accept,
  applyPersist,
  type Commit,
  type ConsensusConfig,
  type CounterValue,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  type FieldLimits,
  fieldLimits,
  type Message,
  messageBytesMax,
  messageEncodedBytes,
  type PersistDelta,
  type PersistedEntry,
  type PillarSnapshot,
  type Prepare,
  readCounterValue,
  readStable,
  readViewProof,
  type TrinxState,
  type ViewProof,
  writeCounterValue,
  writeStable,
  writeViewProof,
} from '../consensus/index.js';
import { DecodeError, decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';
import type { LedgerStore, MetaRecord } from '../ledger/store.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function toTagged(v: unknown): Json {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return { $n: v.toString() };
  if (v instanceof Uint8Array)
    return { $b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v instanceof Map) return { $m: [...v.entries()].map(([k, x]) => [toTagged(k), toTagged(x)]) };
  if (Array.isArray(v)) return v.map(toTagged);
  if (typeof v === 'object') {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      if (x !== undefined) o[k] = toTagged(x);
    return o;
  }
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  throw new TypeError(`cannot persist a ${typeof v}`);
}

export function fromTagged(j: Json): unknown {
  if (j === null || typeof j !== 'object') return j;
  if (Array.isArray(j)) return j.map(fromTagged);
  if (typeof j.$n === 'string' && Object.keys(j).length === 1) return BigInt(j.$n);
  if (typeof j.$b === 'string' && Object.keys(j).length === 1)
    return new Uint8Array(Buffer.from(j.$b, 'base64'));
  if (Array.isArray(j.$m) && Object.keys(j).length === 1) {
    return new Map((j.$m as Json[][]).map(([k, x]) => [fromTagged(k as Json), fromTagged(x as Json)]));
  }
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(j)) o[k] = fromTagged(x);
  return o;
}

/** The encoding of the previous version, kept to write old-format data dirs in tests. */
export const encodeLegacyRecord = (v: unknown): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(toTagged(v)));

/** Everything in a delta but its entries: the core decides what the header holds. */
export type Header = Omit<PersistDelta, 'putEntries'>;

/** First byte of a record: its format. */
export const RecordTag = {
  /** A PersistedEntry: the prepare's wire message, then the own commit's, if any. */
  ENTRY: 1,
  /** A Header (see writeHeader). */
  HEADER: 2,
  /** Tagged JSON of the previous version: '{'. */
  LEGACY_JSON: 0x7b,
} as const;

/**
 * Every durable field a header carries. A field the core adds to PersistDelta fails to
 * compile here until someone labels it, which is the moment to add it to writeHeader and
 * readHeader (otherwise it would be silently lost on restart; the compiler cannot check
 * that part, the round-trip tests with real view-change deltas do). The legacy link chains
 * are neither written nor read.
 */
const HEADER_FIELDS: Record<keyof Header, 'stored' | 'legacy'> = {
  pillar: 'stored',
  trinx: 'stored',
  view: 'stored',
  viewChangeTarget: 'stored',
  top: 'stored',
  stable: 'stored',
  viewProofs: 'stored',
  accept: 'stored',
  pruneBelow: 'stored',
  sentAhead: 'stored',
  chain: 'legacy',
  entryTop: 'legacy',
  entryChain: 'legacy',
};
void HEADER_FIELDS;

/** A consensus record that does not decode: the replica must not start on guessed state. */
export class PersistedStateError extends Error {
  override readonly name = 'PersistedStateError';
  readonly code = 'consensus-state-corrupt';
  constructor(
    readonly key: string,
    readonly reason: DecodeError,
  ) {
    super(`consensus record ${key} is corrupt: ${reason.message}`, { cause: reason });
  }
}

// ---- binary records ----

const MAC_BYTES = 32;
/** TrInX has a handful of counters; the format leaves room for new ones without trusting a prefix. */
const TRINX_COUNTERS_MAX = 16;
const DIGEST_BYTES = 32;

/**
 * Bounds for decoding. The records are this replica's own, so the bounds are generous: one
 * the core can legitimately exceed would keep the replica from restarting. Each view proof
 * covers at most window/P slots (the wire format's bound); the core keeps the proofs of the
 * views its log's prepares come from (at most window/P) and of the current and later views.
 */
interface RecordLimits {
  /** The consensus fields' own bounds (validators, pillars, slot digests per proof). */
  readonly fields: FieldLimits;
  readonly messageMax: number;
  readonly slots: number;
  readonly proofsMax: number;
  readonly headerMax: number;
}

function recordLimits(c: ConsensusConfig): RecordLimits {
  const slots = Math.max(1, Math.ceil(c.window / c.pillars));
  const proofsMax = 4 * slots + 16;
  const proofMax = 64 + slots * DIGEST_BYTES + 4 + c.n * (4 + MAC_BYTES) + 16;
  const messageMax = messageBytesMax(c);
  return {
    fields: fieldLimits(c),
    messageMax,
    slots,
    proofsMax,
    headerMax: 4096 + proofsMax * proofMax + messageMax,
  };
}

/** A wire message of the expected type, from a length-prefixed field. */
function readMessage<T extends Message['type']>(
  r: Reader,
  c: ConsensusConfig,
  maxBytes: number,
  type: T,
): Extract<Message, { type: T }> {
  const bytes = r.bytes(maxBytes, type);
  const m = decodeMessage(bytes, c);
  if (!m.ok) throw new DecodeError(m.error.code, `${type}: ${m.error.message}`, type);
  if (m.value.type !== type) throw new DecodeError('bad-tag', `expected a ${type}, found a ${m.value.type}`);
  return m.value as Extract<Message, { type: T }>;
}

/** Writes `m` behind its length prefix; a prefix that disagrees would make the record unreadable. */
function writeSized(w: Writer, m: Prepare | Commit): void {
  const length = messageEncodedBytes(m);
  w.u32(length);
  const start = w.length;
  encodeMessageInto(w, m);
  if (w.length - start !== length)
    throw new Error(`assertion: a ${m.type} encoded to ${w.length - start} bytes, its prefix says ${length}`);
}

function writeEntry(w: Writer, e: PersistedEntry): void {
  // The messages go straight into `w` behind their exact length: encoding each on its own
  // first would allocate and copy the prepare's batch again, and batch-sized buffers are what cost.
  w.u8(RecordTag.ENTRY);
  writeSized(w, e.prepare);
  if (e.myCommit === null) w.u8(0);
  else {
    w.u8(1);
    writeSized(w, e.myCommit);
  }
}

function readEntry(r: Reader, c: ConsensusConfig, messageMax: number): PersistedEntry {
  const prepare: Prepare = readMessage(r, c, messageMax, 'prepare');
  const flag = r.u8('hasCommit');
  if (flag > 1) throw new DecodeError('bad-value', 'bad commit flag', 'hasCommit');
  const myCommit: Commit | null = flag === 1 ? readMessage(r, c, messageMax, 'commit') : null;
  return { prepare, myCommit };
}

function writeHeader(h: Header, lim: RecordLimits): Uint8Array {
  // A header this replica could not read back would keep it from restarting: stop now instead.
  if ((h.viewProofs?.length ?? 0) > lim.proofsMax)
    throw new Error(
      `assertion: ${h.viewProofs?.length} view proofs, the record format allows ${lim.proofsMax}`,
    );
  if (h.trinx.counters.length > TRINX_COUNTERS_MAX)
    throw new Error(
      `assertion: ${h.trinx.counters.length} TrInX counters, the record format allows ${TRINX_COUNTERS_MAX}`,
    );
  const w = new Writer(512);
  w.u8(RecordTag.HEADER).u16(h.pillar).u32(h.trinx.counters.length);
  for (const v of h.trinx.counters) writeCounterValue(w, v);
  w.u64(h.view);
  if (h.viewChangeTarget === null) w.u8(0);
  else w.u8(1).u64(h.viewChangeTarget);
  w.u64(h.top).u64(h.pruneBelow);
  // Stable checkpoint and view proofs in the consensus wire layout: one codec for them.
  writeStable(w, h.stable);
  const proofs = h.viewProofs ?? [];
  w.u32(proofs.length);
  for (const p of proofs) writeViewProof(w, p);
  const accept = h.accept ?? null;
  if (accept === null) w.u8(0);
  else w.u8(1).bytes(encodeMessage(accept));
  // Last and written only when set: a header from before sending ahead existed reads as not.
  if (h.sentAhead === true) w.u8(1);
  return w.finish();
}

function readFlag(r: Reader, field: string): boolean {
  const f = r.u8(field);
  if (f > 1) throw new DecodeError('bad-value', `bad ${field} flag`, field);
  return f === 1;
}

function readHeader(r: Reader, c: ConsensusConfig, lim: RecordLimits): Header {
  const pillar = r.u16('pillar');
  if (pillar >= c.pillars) throw new DecodeError('bad-value', `pillar ${pillar} out of range`, 'pillar');
  const counterCount = r.count(TRINX_COUNTERS_MAX, 'trinx.counters');
  const counters: CounterValue[] = [];
  for (let i = 0; i < counterCount; i++) counters.push(readCounterValue(r, 'trinx.counter'));
  const trinx: TrinxState = { counters };
  const view = r.u64('view');
  const viewChangeTarget = readFlag(r, 'viewChangeTarget') ? r.u64('viewChangeTarget') : null;
  const top = r.u64('top');
  const pruneBelow = r.u64('pruneBelow');
  const stable = readStable(r, lim.fields);
  const proofCount = r.count(lim.proofsMax, 'viewProofs');
  const viewProofs: ViewProof[] = [];
  for (let i = 0; i < proofCount; i++) viewProofs.push(readViewProof(r, lim.fields));
  const accept: Accept | null = readFlag(r, 'accept') ? readMessage(r, c, lim.messageMax, 'accept') : null;
  const sentAhead = r.remaining > 0 ? readFlag(r, 'sentAhead') : false;
  return { pillar, trinx, view, viewChangeTarget, top, pruneBelow, stable, viewProofs, accept, sentAhead };
}

/** The previous version's tagged JSON; what it holds is trusted as much as the binary. */
function readLegacy(bytes: Uint8Array): Result<unknown> {
  try {
    return {
      ok: true,
      value: fromTagged(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))),
    };
  } catch (e) {
    return { ok: false, error: new DecodeError('bad-value', `legacy JSON record: ${(e as Error).message}`) };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * A record of either format: legacy JSON, checked by `legacyLacks` (what it lacks, or null),
 * or binary behind `tag`, read by `read`.
 */
function decodeRecord<T>(
  bytes: Uint8Array,
  f: {
    tag: number;
    name: string;
    bytesMax: number;
    legacyLacks: (v: unknown) => string | null;
    read: (r: Reader) => T;
  },
): Result<T> {
  if (bytes[0] === RecordTag.LEGACY_JSON) {
    const j = readLegacy(bytes);
    if (!j.ok) return j;
    const lacks = f.legacyLacks(j.value);
    if (lacks !== null) return { ok: false, error: new DecodeError('bad-value', lacks) };
    return { ok: true, value: j.value as T };
  }
  return decodeWith(bytes, f.bytesMax, (r) => {
    const tag = r.u8('tag');
    if (tag !== f.tag) throw new DecodeError('bad-tag', `not ${f.name} record (tag ${tag})`, 'tag');
    return f.read(r);
  });
}

/** Decodes an entry record of either format. */
export const decodeEntryRecord = (
  bytes: Uint8Array,
  config: ConsensusConfig,
  lim = recordLimits(config),
): Result<PersistedEntry> =>
  decodeRecord(bytes, {
    tag: RecordTag.ENTRY,
    name: 'an entry',
    bytesMax: 2 * lim.messageMax + 16,
    legacyLacks: (v) =>
      isObject(v) && isObject(v.prepare) && typeof v.prepare.order === 'bigint'
        ? null
        : 'legacy entry has no prepare order',
    read: (r) => readEntry(r, config, lim.messageMax),
  });

/** Decodes a header record of either format. */
export const decodeHeaderRecord = (
  bytes: Uint8Array,
  config: ConsensusConfig,
  lim = recordLimits(config),
): Result<Header> =>
  decodeRecord(bytes, {
    tag: RecordTag.HEADER,
    name: 'a header',
    bytesMax: lim.headerMax,
    legacyLacks: (v) =>
      isObject(v) && typeof v.top === 'bigint' && typeof v.pruneBelow === 'bigint' && isObject(v.trinx)
        ? null
        : 'legacy header lacks top, pruneBelow or trinx',
    read: (r) => readHeader(r, config, lim),
  });

export function encodeEntryRecord(e: PersistedEntry): Uint8Array {
  const w = new Writer(e.prepare.batch.length + 512);
  writeEntry(w, e);
  return w.finish();
}
export const encodeHeaderRecord = (h: Header, config: ConsensusConfig): Uint8Array =>
  writeHeader(h, recordLimits(config));

const headerKey = (pillar: number): string => `consensus/p${pillar}/header`;
const slotKey = (pillar: number, slot: bigint): string => `consensus/p${pillar}/slot/${slot}`;

/** The reused record writer is dropped after a write larger than this. */
const SCRATCH_KEPT_BYTES_MAX = 4 << 20;

/** The largest batchBytesMax a consensus config may have (consensus/config.ts assertConfig). */
const FORMAT_BATCH_BYTES_MAX = 64 << 20;

/**
 * The config stored records are decoded against: the batch size bound of the record format
 * itself, not the current limit. A stored PREPARE was accepted under the limit in force when
 * it was written; an operator who lowers batchBytesMax must not make the replica unable to
 * restart (the current limit still bounds everything the replica accepts from now on).
 */
const storedRecordConfig = (c: ConsensusConfig): ConsensusConfig => ({
  ...c,
  batchBytesMax: Math.max(c.batchBytesMax, FORMAT_BATCH_BYTES_MAX),
});

/** A group's encoded records, valid until done() is called (they may share a reused buffer). */
export interface EncodedRecords {
  readonly records: readonly MetaRecord[];
  done(): void;
}

export class ConsensusPersistence {
  private readonly slots: bigint;
  private readonly pillars: number;
  private readonly limits: RecordLimits;
  /** What stored records are decoded against (storedRecordConfig). */
  private readonly storedConfig: ConsensusConfig;
  private readonly storedLimits: RecordLimits;
  /** Reused across writes (a batch put copies what it is given); null while a write holds it. */
  private scratch: Writer | null = new Writer(1 << 16);
  constructor(
    private readonly store: LedgerStore,
    config: ConsensusConfig,
  ) {
    this.pillars = config.pillars;
    this.limits = recordLimits(config);
    this.slots = BigInt(this.limits.slots);
    this.storedConfig = storedRecordConfig(config);
    this.storedLimits = recordLimits(this.storedConfig);
  }

  private slotOf(order: bigint): bigint {
    return (order / BigInt(this.pillars)) % this.slots;
  }

  /**
   * Writes several deltas (in step order) durably. Deltas of one pillar are folded: the
   * last header wins, entries accumulate (a later entry for the same order replaces).
   */
  async write(deltas: readonly PersistDelta[]): Promise<void> {
    const encoded = this.encode(deltas);
    try {
      // One atomic synced write: a header never refers to entries that are not on disk, and
      // all the action lists folded here cost one fsync (separate puts cost one each).
      await this.store.putMetaBatch(encoded.records);
    } finally {
      encoded.done();
    }
  }

  /**
   * The records write() would put for these deltas, without writing them: the caller writes
   * them in one atomic synced batch of its own (the node puts them in a block's batch) and
   * calls done() once that batch is built, written or not (the records may live in the
   * reused buffer, which done() hands back). No state is kept here about what was written.
   */
  encode(deltas: readonly PersistDelta[]): EncodedRecords {
    const headers = new Map<number, PersistDelta>();
    const entries = new Map<string, { pillar: number; entry: PersistedEntry }>();
    for (const d of deltas) {
      headers.set(d.pillar, d);
      for (const e of d.putEntries)
        entries.set(`${d.pillar}:${e.prepare.order}`, { pillar: d.pillar, entry: e });
    }
    const w = this.scratch ?? new Writer(1 << 16);
    this.scratch = null;
    let released = false;
    const done = (): void => {
      if (released) return;
      released = true;
      // A write that folded many full batches (catch-up) grew the writer: not kept at that size.
      this.scratch = w.length > SCRATCH_KEPT_BYTES_MAX ? null : w.reset();
    };
    try {
      const records: MetaRecord[] = [];
      for (const { pillar, entry } of entries.values()) {
        const start = w.length;
        writeEntry(w, entry);
        records.push({
          name: slotKey(pillar, this.slotOf(entry.prepare.order)),
          value: w.written().subarray(start),
        });
      }
      for (const d of headers.values())
        records.push({ name: headerKey(d.pillar), value: writeHeader(d, this.limits) });
      return { records, done };
    } catch (e) {
      done();
      throw e;
    }
  }

  /**
   * One snapshot per pillar (undefined for a pillar that never persisted: a fresh start).
   * Throws PersistedStateError when a record does not decode.
   */
  async load(): Promise<(PillarSnapshot | undefined)[]> {
    const out: (PillarSnapshot | undefined)[] = [];
    for (let p = 0; p < this.pillars; p++) {
      const raw = await this.store.getMeta(headerKey(p));
      if (raw === null) {
        out.push(undefined);
        continue;
      }
      const h = decodeHeaderRecord(raw, this.storedConfig, this.storedLimits);
      if (!h.ok) throw new PersistedStateError(headerKey(p), h.error);
      if (h.value.pillar !== p) {
        const e = new DecodeError(
          'bad-value',
          `header of pillar ${h.value.pillar} under pillar ${p}`,
          'pillar',
        );
        throw new PersistedStateError(headerKey(p), e);
      }
      const { top, pruneBelow } = h.value;
      const entries: PersistedEntry[] = [];
      for (let s = 0n; s < this.slots; s++) {
        const bytes = await this.store.getMeta(slotKey(p, s));
        if (bytes === null) continue;
        const e = decodeEntryRecord(bytes, this.storedConfig, this.storedLimits);
        if (!e.ok) throw new PersistedStateError(slotKey(p, s), e.error);
        const o = e.value.prepare.order;
        // A slot may still hold an entry from an older lap of the ring: below the prune mark, skip it.
        if (o < pruneBelow || o >= top + BigInt(this.pillars) * this.slots) continue;
        entries.push(e.value);
      }
      // Folded the way the core defines it, so the snapshot is what the core expects.
      out.push(applyPersist(null, { ...h.value, putEntries: entries }));
    }
    return out;
  }
}
