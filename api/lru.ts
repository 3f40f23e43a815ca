import assert from 'node:assert/strict';

/**
 * A bounded map that evicts entries not used recently, by entry count and, with a weigh
 * function, by total weight (e.g. bytes).
 *
 * Second chance (CLOCK) rather than strict LRU: a hit only sets the entry's `used` flag,
 * and eviction walks from the oldest insertion, giving each used entry one more round at
 * the back. Strict LRU re-inserts on every hit (Map delete + set): on the API's hot read
 * paths that stored each request's freshly parsed key in the long-lived map, so every hit
 * left an object for the garbage collector to promote and a Map slot to rehash later. A hit
 * here allocates nothing and writes one boolean.
 */
/** Used entries sent to the back per insert, at most (see evictFor). */
export const SECOND_CHANCES_PER_SET = 8;

interface Slot<K, V> {
  readonly key: K;
  value: V;
  weight: number;
  used: boolean;
  /** False once replaced or evicted: the ring may still hold it until it reaches the head. */
  live: boolean;
}

/**
 * The eviction order is kept in a ring of slots of our own, not in the Map's insertion
 * order. Taking the oldest entry through `map.keys().next()` looks cheap but is not: V8
 * leaves a hole in a Map's table per delete until the table is rehashed, and a fresh
 * iterator steps over every hole from the start, so at the byte bound of a 37k-entry
 * cache each eviction walked about 15k holes (15 us per insert; 0.7 us with the ring).
 */
export class Lru<K, V> {
  private readonly map = new Map<K, Slot<K, V>>();
  private weightTotal = 0;
  /** Oldest first; live slots plus replaced ones not yet at the head. Capacity a power of two. */
  private ring: (Slot<K, V> | undefined)[] = new Array(16);
  private head = 0;
  private count = 0;
  private dead = 0;

  constructor(
    readonly entriesMax: number,
    readonly weightMax: number = Number.POSITIVE_INFINITY,
    private readonly weigh: (v: V) => number = () => 0,
  ) {
    if (!Number.isInteger(entriesMax) || entriesMax < 0) throw new RangeError('entriesMax');
  }

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  set(key: K, value: V): void {
    const weight = this.weigh(value);
    if (this.entriesMax === 0 || weight > this.weightMax) return;
    this.delete(key);
    // Room is made before the new entry goes in, so that it is never its own victim.
    this.evictFor(weight);
    const slot: Slot<K, V> = { key, value, weight, used: false, live: true };
    this.map.set(key, slot);
    this.push(slot);
    this.weightTotal += weight;
  }

  /**
   * Drops unused entries from the oldest on until one more entry of `weight` fits; a used
   * entry passed over goes to the back once, its flag cleared. At most
   * SECOND_CHANCES_PER_SET entries get that round per call, the next used ones are dropped
   * too: when most of a large cache was used, one insert would otherwise walk every entry
   * at once.
   */
  private evictFor(weight: number): void {
    let chances = SECOND_CHANCES_PER_SET;
    while (
      this.map.size > 0 &&
      (this.map.size + 1 > this.entriesMax || this.weightTotal + weight > this.weightMax)
    ) {
      const slot = this.shift();
      if (!slot.live) {
        this.dead--;
        continue;
      }
      if (slot.used && chances-- > 0) {
        slot.used = false;
        this.push(slot);
      } else {
        slot.live = false;
        this.map.delete(slot.key);
        this.weightTotal -= slot.weight;
      }
    }
  }

  private delete(key: K): void {
    const old = this.map.get(key);
    if (old === undefined) return;
    this.map.delete(key);
    this.weightTotal -= old.weight;
    old.live = false;
    this.dead++;
    // Replaced slots wait in the ring for the head; without evictions they would pile up.
    if (this.dead > this.map.size + 16) this.compact();
  }

  private push(slot: Slot<K, V>): void {
    if (this.count === this.ring.length) this.resize(this.ring.length * 2);
    this.ring[(this.head + this.count) & (this.ring.length - 1)] = slot;
    this.count++;
  }

  private shift(): Slot<K, V> {
    const at = this.head;
    const slot = this.ring[at];
    assert(slot !== undefined && this.count > 0, 'ring holds every entry of the map');
    this.ring[at] = undefined;
    this.head = (at + 1) & (this.ring.length - 1);
    this.count--;
    return slot;
  }

  /** Copies the slots (live only, when compacting) in order into a ring of `capacity`. */
  private resize(capacity: number, liveOnly = false): void {
    const next: (Slot<K, V> | undefined)[] = new Array(capacity);
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const slot = this.ring[(this.head + i) & (this.ring.length - 1)]!;
      if (!liveOnly || slot.live) next[n++] = slot;
    }
    this.ring = next;
    this.head = 0;
    this.count = n;
  }

  private compact(): void {
    let capacity = 16;
    while (capacity < this.map.size * 2) capacity *= 2;
    this.resize(capacity, true);
    this.dead = 0;
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.weightTotal;
  }
}
