/**
 * A bounded least-recently-used map (Map keeps insertion order; a hit re-inserts).
 * Bounded by entry count and, with a weigh function, by total weight (e.g. bytes).
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  private weightTotal = 0;

  constructor(
    readonly entriesMax: number,
    readonly weightMax: number = Number.POSITIVE_INFINITY,
    private readonly weigh: (v: V) => number = () => 0,
  ) {
    if (!Number.isInteger(entriesMax) || entriesMax < 0) throw new RangeError('entriesMax');
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    const w = this.weigh(value);
    if (this.entriesMax === 0 || w > this.weightMax) return;
    this.delete(key);
    this.map.set(key, value);
    this.weightTotal += w;
    while (this.map.size > this.entriesMax || this.weightTotal > this.weightMax) {
      this.delete(this.map.keys().next().value as K);
    }
  }

  private delete(key: K): void {
    const old = this.map.get(key);
    if (old === undefined) return;
    this.map.delete(key);
    this.weightTotal -= this.weigh(old);
  }

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.weightTotal;
  }
}
