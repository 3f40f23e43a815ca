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
const SECOND_CHANCES_PER_SET = 8;

interface Slot<V> {
  value: V;
  weight: number;
  used: boolean;
}

export class Lru<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  private weightTotal = 0;

  constructor(
    readonly entriesMax: number,
    readonly weightMax: number = Number.POSITIVE_INFINITY,
    private readonly weigh: (v: V) => number = () => 0,
    /**
     * Called with a used entry's value as it goes to the back; what it returns is kept (same
     * weight). Values packed into shared slabs move into the current one here, so slab age
     * follows the map's order and an old slab is freed once its unused entries are evicted.
     */
    private readonly renew?: (v: V) => V,
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
    this.map.set(key, { value, weight, used: false });
    this.weightTotal += weight;
  }

  /**
   * Drops unused entries from the oldest on until one more entry of `weight` fits; a used
   * entry passed over goes to the back once, its flag cleared. At most
   * SECOND_CHANCES_PER_SET entries get that round per call, the next used ones are dropped
   * too: when most of a large cache was used, one insert would otherwise walk (and renew,
   * copying its bytes) every entry at once.
   */
  private evictFor(weight: number): void {
    let chances = SECOND_CHANCES_PER_SET;
    while (
      this.map.size > 0 &&
      (this.map.size + 1 > this.entriesMax || this.weightTotal + weight > this.weightMax)
    ) {
      const [key, slot] = this.map.entries().next().value as [K, Slot<V>];
      this.map.delete(key);
      if (slot.used && chances-- > 0) {
        slot.used = false;
        if (this.renew !== undefined) slot.value = this.renew(slot.value);
        this.map.set(key, slot);
      } else {
        this.weightTotal -= slot.weight;
      }
    }
  }

  private delete(key: K): void {
    const old = this.map.get(key);
    if (old === undefined) return;
    this.map.delete(key);
    this.weightTotal -= old.weight;
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.weightTotal;
  }
}
