// The cache of rendered GET /v1/txs/:hash answers, kept entirely outside the JS heap.
//
// A tx lookup that misses renders about 1.6 KB of JSON and, on a hash's second lookup,
// inserts it here. With one JS object per entry (a Map slot, an answer object, a Buffer
// view, the ETag and key strings: about 500 bytes across five objects) every insert left
// objects that survived two scavenges and were copied into old space, and a busy cache
// inserts thousands a second: that copying was the largest part of the server's
// scavenge pauses under load, and the old-space growth brought mark-compacts with it.
// Here an entry is a row of typed arrays (its 32-byte key, where its bytes are, a used
// flag) in an open-addressing table, and its ETag and body sit in shared 1 MiB slabs: an
// insert allocates nothing on the JS heap that outlives the request, and a hit allocates
// only the short-lived view and ETag string it sends.
//
// Eviction is second chance (CLOCK) over insertion order, as in api/lru.ts: a hit sets a
// flag; an entry used since its last round is copied into the current slab and goes to
// the back once. So slabs age in ring order, and a slab is emptied when its last live
// entry is evicted or moved.
//
// The slabs are reserved when the cache is made (byte bounds up to RESERVE_BYTES_MAX; the
// pages are only touched as answers are written), and an emptied slab is kept as a spare
// and filled again, never left to the garbage collector. Why: V8 counts every ArrayBuffer
// as external memory, and when that grows by 64 MB between two mark-compacts it starts
// one ("external memory pressure"), after which the old-generation limit sits close to
// the live heap and mark-compacts follow every few seconds, each with main-thread marking
// steps of 10-20 ms when the 2 cores are busy: the on-CPU event-loop stalls of issue #6
// (tx-by-hash at half load), which no GC pause entry showed. A cache growing to its bound
// while serving, and at the bound a slab dropped and a new one allocated a few times a
// second (freed only by a mark-compact, as the slab's Buffer lives in old space), kept
// that going; reserved and reused slabs add no external memory after startup. Reuse is
// safe because no slab byte leaves the cache: get() and set() answer with copies (about
// 0.2 us for 1.6 KB), so no socket is still writing from a slab when it is refilled.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ImmutableAnswer } from './immutable.js';
import { SECOND_CHANCES_PER_SET } from './lru.js';

/** Bytes counted per entry besides its ETag and body: key, row and index slots. */
export const TX_ANSWER_ENTRY_OVERHEAD = 64;
const KEY_WORDS = 8;
const EMPTY = -1;
/**
 * Spare slabs kept at most beyond those reserved. At the byte bound a slab empties about as
 * often as a new one is needed, so a few suffice; more would hold memory the bound does not count.
 */
export const SPARE_SLABS_MAX = 4;
/** Byte bounds up to this are reserved as slabs when the cache is made; larger ones grow as they fill. */
export const RESERVE_BYTES_MAX = 256 * 1024 * 1024;

/** Lowercase hex digit to its value (keys are validated, lowercased hex). */
const nibble = (c: number): number => (c <= 57 ? c - 48 : c - 87);

export class TxAnswerCache {
  /** Row count the arrays hold now (grows by doubling up to entriesMax). */
  private rows = 0;
  private keys = new Uint32Array(0);
  private slabOf = new Int32Array(0);
  private offset = new Int32Array(0);
  private etagLen = new Int32Array(0);
  private bodyLen = new Int32Array(0);
  private used = new Uint8Array(0);
  /** Open addressing, linear probing: row index or EMPTY. Power-of-two size, at most half full. */
  private table = new Int32Array(0);
  private mask = 0;
  /** 32 - log2(table size): home() keeps the top bits of the mixed word. */
  private shift = 32;
  private readonly seed = randomBytes(4).readUInt32LE(0);
  /** Rows in insertion order (oldest at head), each live row once. */
  private ring = new Int32Array(0);
  private head = 0;
  private count = 0;
  /** Rows not in use. */
  private free = new Int32Array(0);
  private freeCount = 0;
  private bytesTotal = 0;

  private readonly slabs: (Buffer | undefined)[] = [];
  private readonly slabLive: number[] = [];
  private readonly freeSlabs: number[] = [];
  /** Reserved and emptied slabs of slabBytes, filled before any new one is allocated. */
  private readonly spares: Buffer[] = [];
  private readonly sparesMax: number;
  /** The slab being filled, and how far. */
  private current = -1;
  private filled = 0;
  /** The parsed key of the current lookup. */
  private readonly probe = new Uint32Array(KEY_WORDS);

  constructor(
    readonly entriesMax: number,
    readonly bytesMax: number,
    /** Bytes per slab; an answer above an eighth of this gets a slab of its own. */
    readonly slabBytes: number = 1 << 20,
  ) {
    if (!Number.isInteger(entriesMax) || entriesMax < 0 || entriesMax > 1 << 28) {
      throw new RangeError('entriesMax');
    }
    if (!(bytesMax >= 0)) throw new RangeError('bytesMax');
    if (!Number.isInteger(slabBytes) || slabBytes < 64) throw new RangeError('slabBytes');
    // Partly emptied slabs let the live ones exceed bytesMax / slabBytes by a couple.
    const reserve = entriesMax > 0 && bytesMax <= RESERVE_BYTES_MAX ? Math.ceil(bytesMax / slabBytes) + 2 : 0;
    for (let i = 0; i < reserve; i++) this.spares.push(Buffer.allocUnsafeSlow(slabBytes));
    this.sparesMax = reserve + SPARE_SLABS_MAX;
  }

  get size(): number {
    return this.count;
  }

  /** ETag, body and per-entry overhead of every entry held. */
  get bytes(): number {
    return this.bytesTotal;
  }

  /** Slabs alive in the cache (for tests and metrics). */
  get slabCount(): number {
    return this.slabs.length - this.freeSlabs.length;
  }

  /** Reserved or emptied slabs kept for reuse (for tests and metrics). */
  get spareSlabCount(): number {
    return this.spares.length;
  }

  /**
   * The answer for a tx hash (64 lowercase hex digits), marking it used; undefined when not
   * held. The returned body and string are copies: nothing of them is kept.
   */
  get(hashHex: string): ImmutableAnswer | undefined {
    const row = this.find(hashHex);
    if (row === EMPTY) return undefined;
    this.used[row] = 1;
    return this.answerAt(row);
  }

  private answerAt(row: number): ImmutableAnswer {
    const slab = this.slabs[this.slabOf[row]!]!;
    const at = this.offset[row]!;
    const bodyAt = at + this.etagLen[row]!;
    const bodyLen = this.bodyLen[row]!;
    // A copy (small ones from Node's shared pool), never a view: the slab may be refilled
    // while a socket still writes this.
    const body = Buffer.allocUnsafe(bodyLen);
    slab.copy(body, 0, bodyAt, bodyAt + bodyLen);
    return { etag: slab.toString('latin1', at, bodyAt), body };
  }

  /**
   * Keeps the answer (an ETag of Latin-1 characters, a JSON body) for this tx hash and
   * returns it as get() would; evicts what it must to stay within both bounds. An answer
   * that alone exceeds bytesMax is not kept (returned all the same). A hash already held
   * keeps its answer (two misses raced; a committed tx's answer does not change).
   */
  set(hashHex: string, etag: string, json: string): ImmutableAnswer {
    const etagBytes = etag.length;
    const bodyBytes = Buffer.byteLength(json);
    const size = etagBytes + bodyBytes;
    const weight = size + TX_ANSWER_ENTRY_OVERHEAD;
    if (this.entriesMax === 0 || weight > this.bytesMax) {
      return { etag, body: Buffer.from(json) };
    }
    // Parses the key into `probe`, where the insert below takes it from.
    const held = this.find(hashHex);
    if (held !== EMPTY) {
      this.used[held] = 1;
      return this.answerAt(held);
    }
    this.evictFor(weight);
    const row = this.newRow();
    this.keys.set(this.probe, row * KEY_WORDS);
    this.insertIndex(row);
    this.ring[(this.head + this.count) % this.ring.length] = row;
    this.count++;
    const [slabId, at] = this.room(size);
    const slab = this.slabs[slabId]!;
    slab.write(etag, at, etagBytes, 'latin1');
    slab.write(json, at + etagBytes, bodyBytes, 'utf8');
    this.slabOf[row] = slabId;
    this.offset[row] = at;
    this.etagLen[row] = etagBytes;
    this.bodyLen[row] = bodyBytes;
    this.used[row] = 0;
    this.bytesTotal += weight;
    return { etag, body: Buffer.from(json) };
  }

  private weightOf(row: number): number {
    return this.etagLen[row]! + this.bodyLen[row]! + TX_ANSWER_ENTRY_OVERHEAD;
  }

  /** Parses the key into `probe` and returns its row, or EMPTY. */
  private find(hashHex: string): number {
    assert(hashHex.length === 2 * 4 * KEY_WORDS, 'a tx hash is 64 hex digits');
    const p = this.probe;
    for (let w = 0; w < KEY_WORDS; w++) {
      let v = 0;
      for (let i = w * 8; i < w * 8 + 8; i++) v = (v << 4) | nibble(hashHex.charCodeAt(i));
      p[w] = v;
    }
    const table = this.table;
    if (table.length === 0) return EMPTY;
    for (let at = this.home(p[0]!); ; at = (at + 1) & this.mask) {
      const row = table[at]!;
      if (row === EMPTY) return EMPTY;
      if (this.keyIs(row)) return row;
    }
  }

  /**
   * A key's home slot: its first word mixed with a per-process random seed (multiplicative
   * hashing, top bits). The slot of a raw hash word would let someone who grinds tx hashes
   * and gets them committed build one long probe run that every lookup aimed at it walks.
   */
  private home(word: number): number {
    return Math.imul(word ^ this.seed, 0x9e3779b1) >>> this.shift;
  }

  private keyIs(row: number): boolean {
    const k = this.keys;
    const p = this.probe;
    const base = row * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) if (k[base + w] !== p[w]) return false;
    return true;
  }

  private insertIndex(row: number): void {
    let at = this.home(this.keys[row * KEY_WORDS]!);
    while (this.table[at] !== EMPTY) at = (at + 1) & this.mask;
    this.table[at] = row;
  }

  /** Removes a row from the index: backward-shift deletion keeps every probe run unbroken. */
  private deleteIndex(row: number): void {
    const table = this.table;
    const mask = this.mask;
    let hole = this.home(this.keys[row * KEY_WORDS]!);
    while (table[hole] !== row) hole = (hole + 1) & mask;
    for (let at = (hole + 1) & mask; table[at] !== EMPTY; at = (at + 1) & mask) {
      const r = table[at]!;
      const home = this.home(this.keys[r * KEY_WORDS]!);
      // r may fill the hole unless its home lies cyclically in (hole, at].
      const stays = hole <= at ? home > hole && home <= at : home > hole || home <= at;
      if (!stays) {
        table[hole] = r;
        hole = at;
      }
    }
    table[hole] = EMPTY;
  }

  private newRow(): number {
    if (this.freeCount === 0) this.grow();
    return this.free[--this.freeCount]!;
  }

  /** Doubles the rows (up to entriesMax) and rebuilds the index; amortised, and rare once full. */
  private grow(): void {
    const rows = Math.min(this.entriesMax, Math.max(1024, this.rows * 2));
    assert(rows > this.rows, 'a row is free whenever the cache is below entriesMax');
    const widen = <T extends Uint32Array | Int32Array | Uint8Array>(
      a: T,
      make: (n: number) => T,
      per = 1,
    ): T => {
      const out = make(rows * per);
      out.set(a);
      return out;
    };
    this.keys = widen(this.keys, (n) => new Uint32Array(n), KEY_WORDS);
    this.slabOf = widen(this.slabOf, (n) => new Int32Array(n));
    this.offset = widen(this.offset, (n) => new Int32Array(n));
    this.etagLen = widen(this.etagLen, (n) => new Int32Array(n));
    this.bodyLen = widen(this.bodyLen, (n) => new Int32Array(n));
    this.used = widen(this.used, (n) => new Uint8Array(n));
    const ring = new Int32Array(rows);
    for (let i = 0; i < this.count; i++) ring[i] = this.ring[(this.head + i) % this.ring.length]!;
    this.ring = ring;
    this.head = 0;
    const free = new Int32Array(rows);
    free.set(this.free.subarray(0, this.freeCount));
    // New rows are handed out lowest first.
    for (let r = rows - 1; r >= this.rows; r--) free[this.freeCount++] = r;
    this.free = free;
    let tableSize = 16;
    while (tableSize < 2 * rows) tableSize *= 2;
    this.table = new Int32Array(tableSize).fill(EMPTY);
    this.mask = tableSize - 1;
    this.shift = 32 - Math.log2(tableSize);
    this.rows = rows;
    for (let i = 0; i < this.count; i++) this.insertIndex(this.ring[i]!);
  }

  /**
   * Drops unused entries from the oldest on until one more of `weight` fits; a used one
   * passed over is copied into the current slab and goes to the back, its flag cleared.
   * At most SECOND_CHANCES_PER_SET get that round per call, the next used ones are dropped.
   */
  private evictFor(weight: number): void {
    let chances = SECOND_CHANCES_PER_SET;
    while (this.count > 0 && (this.count + 1 > this.entriesMax || this.bytesTotal + weight > this.bytesMax)) {
      const row = this.ring[this.head]!;
      this.head = (this.head + 1) % this.ring.length;
      this.count--;
      if (this.used[row] === 1 && chances-- > 0) {
        this.used[row] = 0;
        this.move(row);
        this.ring[(this.head + this.count) % this.ring.length] = row;
        this.count++;
      } else {
        this.deleteIndex(row);
        this.release(row);
        this.bytesTotal -= this.weightOf(row);
        this.free[this.freeCount++] = row;
      }
    }
  }

  /** Copies a row's bytes into the current slab, unless they have a slab of their own. */
  private move(row: number): void {
    const size = this.etagLen[row]! + this.bodyLen[row]!;
    if (size > this.slabBytes / 8) return;
    const from = this.slabs[this.slabOf[row]!]!;
    const at = this.offset[row]!;
    const [slabId, to] = this.room(size);
    from.copy(this.slabs[slabId]!, to, at, at + size);
    this.release(row);
    this.slabOf[row] = slabId;
    this.offset[row] = to;
  }

  /** Room for `size` bytes, counted as one more live entry of that slab: [slab id, offset]. */
  private room(size: number): [number, number] {
    let id: number;
    let at: number;
    if (size > this.slabBytes / 8) {
      id = this.newSlab(size);
      at = 0;
    } else {
      if (this.current === EMPTY || this.filled + size > this.slabBytes) {
        const old = this.current;
        this.current = this.newSlab(this.slabBytes);
        this.filled = 0;
        if (old !== EMPTY && this.slabLive[old] === 0) this.dropSlab(old);
      }
      id = this.current;
      at = this.filled;
      this.filled += size;
    }
    this.slabLive[id] = this.slabLive[id]! + 1;
    return [id, at];
  }

  /** The row's bytes no longer count for their slab; an emptied slab other than the current one goes. */
  private release(row: number): void {
    const id = this.slabOf[row]!;
    const live = this.slabLive[id]! - 1;
    this.slabLive[id] = live;
    if (live === 0 && id !== this.current) this.dropSlab(id);
  }

  private newSlab(bytes: number): number {
    // Outside Node's shared 8 KB pool and the JS heap; one allocation per slab.
    const slab = (bytes === this.slabBytes ? this.spares.pop() : undefined) ?? Buffer.allocUnsafeSlow(bytes);
    const id = this.freeSlabs.pop() ?? this.slabs.length;
    this.slabs[id] = slab;
    this.slabLive[id] = 0;
    return id;
  }

  private dropSlab(id: number): void {
    const slab = this.slabs[id]!;
    // Answers of their own (above slabBytes / 8) are rare and of any size: those go.
    if (slab.length === this.slabBytes && this.spares.length < this.sparesMax) this.spares.push(slab);
    this.slabs[id] = undefined;
    this.freeSlabs.push(id);
  }
}
