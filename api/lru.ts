/** A bounded least-recently-used map (Map keeps insertion order; a hit re-inserts). */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(readonly entriesMax: number) {
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
    if (this.entriesMax === 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.entriesMax) this.map.delete(this.map.keys().next().value as K);
  }

  get size(): number {
    return this.map.size;
  }
}
