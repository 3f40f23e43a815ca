// Durable consensus state in the ledger store's metadata space (so backup, restore
// and unsafe-reset see it with the ledger). Per pillar: one header record (TrInX
// counters, view, view-change target, top, chain, stable checkpoint, prune mark) and
// the accepted prepares in a ring of window/P slots keyed by order, so overwriting a
// slot prunes what the checkpoint made obsolete without a delete operation.
// Values are stored as tagged JSON (bigint, bytes, maps survive the round trip): the
// objects are the core's own types, and this keeps the node free of a second codec
// for them.
import {
  applyPersist,
  type PersistDelta,
  type PersistedEntry,
  type PillarSnapshot,
} from '../consensus/index.js';
import type { LedgerStore } from '../ledger/store.js';

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

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(toTagged(v)));
const dec = (b: Uint8Array): unknown => fromTagged(JSON.parse(new TextDecoder().decode(b)) as Json);

const headerKey = (pillar: number): string => `consensus/p${pillar}/header`;
const slotKey = (pillar: number, slot: bigint): string => `consensus/p${pillar}/slot/${slot}`;

/** Everything in a delta but its entries: the core decides what the header holds. */
type Header = Omit<PersistDelta, 'putEntries'>;

export class ConsensusPersistence {
  private readonly slots: bigint;
  constructor(
    private readonly store: LedgerStore,
    private readonly pillars: number,
    window: number,
  ) {
    this.slots = BigInt(Math.max(1, Math.ceil(window / pillars)));
  }

  private slotOf(order: bigint): bigint {
    return (order / BigInt(this.pillars)) % this.slots;
  }

  /**
   * Writes several deltas (in step order) durably. Deltas of one pillar are folded: the
   * last header wins, entries accumulate (a later entry for the same order replaces).
   */
  async write(deltas: readonly PersistDelta[]): Promise<void> {
    const headers = new Map<number, PersistDelta>();
    const entries = new Map<string, { pillar: number; entry: PersistedEntry }>();
    for (const d of deltas) {
      headers.set(d.pillar, d);
      for (const e of d.putEntries)
        entries.set(`${d.pillar}:${e.prepare.order}`, { pillar: d.pillar, entry: e });
    }
    // One atomic synced write: a header never refers to entries that are not on disk, and
    // all the action lists folded here cost one fsync (separate puts cost one each).
    const records: { name: string; value: Uint8Array }[] = [];
    for (const { pillar, entry } of entries.values())
      records.push({ name: slotKey(pillar, this.slotOf(entry.prepare.order)), value: enc(entry) });
    for (const d of headers.values()) {
      const { putEntries: _entries, ...h } = d;
      records.push({ name: headerKey(d.pillar), value: enc(h satisfies Header) });
    }
    await this.store.putMetaBatch(records);
  }

  /** One snapshot per pillar (undefined for a pillar that never persisted: a fresh start). */
  async load(): Promise<(PillarSnapshot | undefined)[]> {
    const out: (PillarSnapshot | undefined)[] = [];
    for (let p = 0; p < this.pillars; p++) {
      const raw = await this.store.getMeta(headerKey(p));
      if (raw === null) {
        out.push(undefined);
        continue;
      }
      const h = dec(raw) as Header;
      const entries: PersistedEntry[] = [];
      for (let s = 0n; s < this.slots; s++) {
        const e = await this.store.getMeta(slotKey(p, s));
        if (e === null) continue;
        const entry = dec(e) as PersistedEntry;
        const o = entry.prepare.order;
        // A slot may still hold an entry from an older lap of the ring: below the prune mark, skip it.
        if (o < h.pruneBelow || o >= h.top + BigInt(this.pillars) * this.slots) continue;
        entries.push(entry);
      }
      // Folded the way the core defines it, so new header fields need no change here.
      out.push(applyPersist(null, { ...h, putEntries: entries }));
    }
    return out;
  }
}
