// `npm run bench -- mempool [--quick]`: the mempool's bookkeeping per tx, in process, old
// against new (node/mempool.ts): each round drives one pool of
// each through the same replay, interleaved intake batch by intake batch (who goes first
// alternates), so both see the same load on this shared machine; medians over the rounds.
//
// Each round replays the same real signed transfers (384 senders, each with consecutive
// nonces, as in the batched phase of `bench -- network`) through a fresh pool, the way a
// validator under saturation handles them:
//   intake     gossip / client batches of 64: prepare each, verifyAhead the ready ones,
//              addPrepared each in order;
//   known      every tx arrives once more while held (re-gossip, a client retry): prepare
//              answers "known" from the hash;
//   delivery   every 1,000 txs a batch is delivered: the executor asks signatureVerified for
//              each tx, then markOrdered (the leader first cuts it with takeBatch; a follower
//              is delivered the oldest 1,000 txs it holds);
//   written    three deliveries later the block is written: removeCommitted, then hasSender
//              and pruneStale for each of the block's senders.
// The executor's hashes and sender hexes are fresh strings (it hashes the batch itself), made
// outside the timed sections; only the mempool calls (and the nonce reader they call, a Map
// lookup as the store's nonce cache) are timed. Two starting points (see ROWS) for the
// verified FIFO (4 x txCountMax hashes): filling, as in the first minutes of a node (the
// network benchmark), and at its bound after churn, as in a node that has run a while;
// filled with earlier hashes through verifyAhead before the replay (untimed).
//
// Verification is skipped the way the pool would skip it for a tx it verified before:
// the pool is built with a batch verifier that answers "valid" for every check without
// looking, so verifyAhead does all its bookkeeping (and marks every tx verified) but no
// Ed25519 work; addPrepared then finds each tx verified and does not verify inline.
//
// "old" is node/mempool.js of the build in MEMPOOL_BENCH_BASELINE (a git-archived earlier
// commit compiled with tsc --outDir; its constructor must take the batch verifier, as from
// b6e07e5 on: bench/results/mempool.json holds the A/B against the code before, which had to
// get that one parameter added). Without it "old" is the current code too: an A/A run, which
// shows the noise.
//
// Reported: median ns per tx over the rounds, and bytes allocated per tx in the same timed
// sections (the heap's growth across each; one extra replay per implementation, see
// allocatedPerTx).
import crypto from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { toHex } from '../ledger/codec/binary.js';
import { keyPairFromSeed } from '../ledger/keys.js';
import { encodeTx, signTx } from '../ledger/tx.js';
import type { SignatureCheck } from '../ledger/verify-pool.js';
import { Mempool as Current, type IntakeTx, type MempoolLimits, type NonceReader } from '../node/mempool.js';
import { writeResult } from './_results.js';
import { median } from './_stats.js';

const CHAIN = 'bench-chain';
const SENDERS = 384;
const INTAKE_TXS = 64;
const BATCH_TXS = 1000;
/** Deliveries between a batch's delivery and its block being written (the executor's pipeline). */
const WRITE_LAG_BATCHES = 3;
/** The known copy of a tx arrives this many intake batches after the tx. */
const KNOWN_LAG_BATCHES = 8;

/** What the replay uses of a pool: the public API both implementations share. */
interface PoolLike {
  readonly size: number;
  readonly pendingCount: number;
  prepare(bytes: Uint8Array): { kind: 'ready'; tx: IntakeTx } | { kind: 'done'; outcome: { kind: string } };
  verifyAhead(txs: readonly IntakeTx[]): Promise<void>;
  addPrepared(t: IntakeTx, opts: { verifySignature: boolean; local: boolean }): Promise<{ kind: string }>;
  signatureVerified(hashHex: string): boolean;
  takeBatch(txsMax: number, bytesMax: number): { hashHex: string; bytes: Uint8Array }[];
  markOrdered(hashesHex: Iterable<string>): number;
  removeCommitted(hashesHex: Iterable<string>): unknown[];
  hasSender(fromHex: string): boolean;
  pruneStale(fromHex: string, committedNonce: bigint): number;
}

type BatchVerifier = (checks: readonly SignatureCheck[]) => Promise<boolean[]>;
type PoolCtor = new (
  chainId: string,
  limits: MempoolLimits,
  committed: NonceReader,
  now: () => number,
  verifier: BatchVerifier,
) => PoolLike;

const BASELINE_DIR = process.env.MEMPOOL_BENCH_BASELINE;
const Baseline: PoolCtor =
  BASELINE_DIR === undefined
    ? Current
    : (
        (await import(pathToFileURL(resolve(BASELINE_DIR, 'node', 'mempool.js')).href)) as {
          Mempool: PoolCtor;
        }
      ).Mempool;
const IMPLS: Record<'old' | 'new', PoolCtor> = { old: Baseline, new: Current };

/** Answers "valid" without verifying (see the header). */
const trustAll: BatchVerifier = (checks) => Promise.resolve(checks.map(() => true));

interface Workload {
  txs: Uint8Array[];
  /** Sender of each tx, and its nonce. */
  senderOf: number[];
  nonceOf: bigint[];
  sendersHex: string[];
  senderKeys: Uint8Array[];
}

function workload(n: number): Workload {
  const keys = Array.from({ length: SENDERS }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    return keyPairFromSeed(seed);
  });
  const to = keyPairFromSeed(new Uint8Array(32).fill(7)).publicKey;
  const txs: Uint8Array[] = [];
  const senderOf: number[] = [];
  const nonceOf: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const s = i % SENDERS;
    const nonce = BigInt(Math.floor(i / SENDERS) + 1);
    const k = keys[s] as (typeof keys)[number];
    txs.push(
      encodeTx(
        signTx(
          { chainId: CHAIN, from: k.publicKey, nonce, payload: { type: 'transfer', to, amount: 1n } },
          k.secretKey,
        ),
      ),
    );
    senderOf.push(s);
    nonceOf.push(nonce);
  }
  const sendersHex = keys.map((k) => Buffer.from(k.publicKey).toString('hex'));
  return { txs, senderOf, nonceOf, sendersHex, senderKeys: keys.map((k) => k.publicKey) };
}

/** A delivered batch as the executor sees it: fresh hash strings, its senders, the tx indexes. */
interface Delivered {
  hashesHex: string[];
  sendersHex: Set<string>;
  indexes: number[];
}

const PHASES = ['intake', 'known', 'delivery', 'written'] as const;
type Phase = (typeof PHASES)[number];

interface ReplayResult {
  /** ns spent in mempool calls, by phase (see the header). */
  ns: Record<Phase, number>;
  /** With countBytes: bytes allocated in the sections no GC fell into, and how many those were. */
  bytes: Record<Phase, { sum: number; sections: number; kept: number }>;
  accepted: number;
  known: number;
  verified: number;
  removed: number;
}

let gc: (() => void) | null = null;

/** Each replay starts from a collected heap, so no GC of an earlier replay's garbage falls into it. */
function fullGc(): void {
  if (gc === null) {
    v8.setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

const usedHeapBytes = (): number => v8.getHeapStatistics().used_heap_size;
/** What reading the heap's size allocates itself (its result object), measured once. */
const READING_BYTES = (() => {
  const xs: number[] = [];
  for (let i = 0; i < 64; i++) {
    const a = usedHeapBytes();
    xs.push(usedHeapBytes() - a);
  }
  return median(xs.filter((x) => x >= 0));
})();

/** How a replay runs: the role, the pool's bound, and what the verified FIFO holds at the start. */
interface Scenario {
  leader: boolean;
  txCountMax: number;
  /** Entered into the verified FIFO before the replay (untimed), to start it at its bound. */
  prefill: readonly IntakeTx[];
  /** Measure the bytes each timed section allocates instead of its time (see allocatedPerTx). */
  countBytes?: boolean;
}

/** One pool going through the workload, step by step, timing its mempool calls. */
class Driver {
  readonly r: ReplayResult = {
    ns: { intake: 0, known: 0, delivery: 0, written: 0 },
    bytes: {
      intake: { sum: 0, sections: 0, kept: 0 },
      known: { sum: 0, sections: 0, kept: 0 },
      delivery: { sum: 0, sections: 0, kept: 0 },
      written: { sum: 0, sections: 0, kept: 0 },
    },
    accepted: 0,
    known: 0,
    verified: 0,
    removed: 0,
  };
  /** Tx indexes of each batch taken or delivered, in order (the leaders' must agree). */
  readonly batches: number[][] = [];
  private readonly pool: PoolLike;
  private readonly committed = new Map<string, bigint>();
  private readonly indexOfHash: Map<string, number> | null;
  private readonly queue: Delivered[] = [];
  private deliveredUpTo = 0;
  private t0 = process.hrtime.bigint();
  private heap0 = 0;

  constructor(
    Impl: PoolCtor,
    private readonly w: Workload,
    private readonly sc: Scenario,
  ) {
    this.pool = new Impl(
      CHAIN,
      { txCountMax: sc.txCountMax, bytesMax: 64 * 1024 * 1024, nonceAheadMax: 10_000 },
      (hex) => this.committed.get(hex) ?? 0n,
      () => 0,
      trustAll,
    );
    this.indexOfHash = sc.leader ? new Map() : null;
  }

  async prefill(): Promise<void> {
    const all = this.sc.prefill;
    for (let i = 0; i < all.length; i += INTAKE_TXS)
      await this.pool.verifyAhead(all.slice(i, i + INTAKE_TXS));
  }

  // Wall time (process.cpuUsage cost 2-60 us a call here); the interleaving makes both
  // pools share whatever else runs on the machine.
  private start(): void {
    if (this.sc.countBytes === true) this.heap0 = usedHeapBytes();
    this.t0 = process.hrtime.bigint();
  }
  private stop(phase: Phase): void {
    this.r.ns[phase] += Number(process.hrtime.bigint() - this.t0);
    if (this.sc.countBytes !== true) return;
    const grown = usedHeapBytes() - this.heap0 - READING_BYTES;
    const b = this.r.bytes[phase];
    b.sections++;
    if (grown < 0) return;
    b.kept++;
    b.sum += grown;
  }

  /** Txs [from, to) arrive (gossip or a client batch), and the copies of an earlier batch. */
  async intake(from: number, to: number): Promise<void> {
    const { pool, w, r } = this;
    this.start();
    const ready: IntakeTx[] = [];
    for (let i = from; i < to; i++) {
      const p = pool.prepare(w.txs[i] as Uint8Array);
      if (p.kind === 'ready') ready.push(p.tx);
    }
    await pool.verifyAhead(ready);
    for (const t of ready) {
      if ((await pool.addPrepared(t, { verifySignature: true, local: this.sc.leader })).kind === 'accepted')
        r.accepted++;
    }
    this.stop('intake');
    if (this.indexOfHash !== null)
      for (let k = 0; k < ready.length; k++) this.indexOfHash.set((ready[k] as IntakeTx).hashHex, from + k);
    const knownFrom = from - KNOWN_LAG_BATCHES * INTAKE_TXS;
    if (knownFrom < 0) return;
    this.start();
    for (let i = knownFrom; i < knownFrom + INTAKE_TXS; i++) {
      if (pool.prepare(w.txs[i] as Uint8Array).kind === 'done') r.known++;
    }
    this.stop('known');
  }

  /** Delivers every full batch of the txs up to `to` (all that are left once `to` is the end). */
  deliver(to: number): void {
    const { pool, w, r } = this;
    const n = w.txs.length;
    while (to - this.deliveredUpTo >= BATCH_TXS || (to === n && this.deliveredUpTo < n)) {
      let indexes: number[];
      const byHash = this.indexOfHash;
      if (byHash !== null) {
        this.start();
        const entries = pool.takeBatch(BATCH_TXS, 1 << 30);
        this.stop('delivery');
        indexes = entries.map((e) => byHash.get(e.hashHex) as number);
        for (const e of entries) byHash.delete(e.hashHex);
      } else {
        indexes = [];
        for (let i = this.deliveredUpTo; i < Math.min(n, this.deliveredUpTo + BATCH_TXS); i++)
          indexes.push(i);
      }
      if (indexes.length === 0) break;
      this.batches.push(indexes);
      this.deliveredUpTo += indexes.length;
      const hashesHex = indexes.map((i) => crypto.hash('sha256', w.txs[i] as Uint8Array, 'hex'));
      const sendersHex = new Set(
        indexes.map((i) => toHex(w.senderKeys[w.senderOf[i] as number] as Uint8Array)),
      );
      this.start();
      for (const h of hashesHex) if (pool.signatureVerified(h)) r.verified++;
      pool.markOrdered(hashesHex);
      this.stop('delivery');
      this.queue.push({ hashesHex, sendersHex, indexes });
      if (this.queue.length > WRITE_LAG_BATCHES) this.write(this.queue.shift() as Delivered);
    }
    if (to === n) for (let b = this.queue.shift(); b !== undefined; b = this.queue.shift()) this.write(b);
  }

  private write(b: Delivered): void {
    const { pool, w, committed } = this;
    for (const i of b.indexes) {
      const hex = w.sendersHex[w.senderOf[i] as number] as string;
      const nonce = w.nonceOf[i] as bigint;
      if (nonce > (committed.get(hex) ?? 0n)) committed.set(hex, nonce);
    }
    this.start();
    this.r.removed += pool.removeCommitted(b.hashesHex).length;
    for (const s of b.sendersHex) if (pool.hasSender(s)) pool.pruneStale(s, committed.get(s) ?? 0n);
    this.stop('written');
  }

  /** Throws if the pool did not do what the replay expects (so both are checked alike). */
  check(): void {
    const { r, pool } = this;
    const n = this.w.txs.length;
    if (r.accepted !== n || r.removed !== n || pool.size !== 0 || pool.pendingCount !== 0) {
      throw new Error(
        `replay went wrong: accepted ${r.accepted}, removed ${r.removed} of ${n}; size ${pool.size}, pending ${pool.pendingCount}`,
      );
    }
  }
}

/**
 * One pass of the workload through fresh pools, one per implementation, interleaved intake
 * batch by intake batch (who goes first alternates), so both see the same machine.
 */
async function replay(impls: readonly PoolCtor[], w: Workload, sc: Scenario): Promise<ReplayResult[]> {
  const drivers = impls.map((Impl) => new Driver(Impl, w, sc));
  fullGc();
  for (const d of drivers) await d.prefill();
  const n = w.txs.length;
  for (let from = 0, step = 0; from < n; from += INTAKE_TXS, step++) {
    const to = Math.min(n, from + INTAKE_TXS);
    const order = step % 2 === 0 ? drivers : [...drivers].reverse();
    for (const d of order) {
      await d.intake(from, to);
      d.deliver(to);
    }
  }
  for (const d of drivers) d.check();
  const first = JSON.stringify(drivers[0]?.batches);
  if (drivers.some((d) => JSON.stringify(d.batches) !== first))
    throw new Error('the pools cut different batches');
  return drivers.map((d) => d.r);
}

/**
 * Bytes allocated per tx in the timed sections (mempool calls) of one replay: the growth of
 * the heap's used size across each section, sections a GC fell into left out and the others
 * scaled up to all (a scavenge empties the young generation, so its section shrinks the heap;
 * one in some hundred sections here). The reading itself allocates: an empty section's
 * growth is taken off each.
 */
async function allocatedPerTx(
  impl: 'old' | 'new',
  w: Workload,
  sc: Scenario,
): Promise<Record<Phase | 'total', number>> {
  const results = await replay([IMPLS[impl]], w, { ...sc, countBytes: true });
  const r = results[0] as ReplayResult;
  const out = { intake: 0, known: 0, delivery: 0, written: 0, total: 0 };
  for (const ph of PHASES) {
    const b = r.bytes[ph];
    if (b.kept === 0) continue;
    out[ph] = Math.round((b.sum * b.sections) / b.kept / w.txs.length);
    out.total += out[ph];
  }
  return out;
}

/**
 * `n` hashes (not of any tx: the FIFO only keys by hash) of txs verified earlier, to fill the
 * verified FIFO up to its bound as after any run of 4 x txCountMax txs.
 */
function verifiedEarlier(n: number, w: Workload): IntakeTx[] {
  const bytes = w.txs[0] as Uint8Array;
  const p = new Current(CHAIN, { txCountMax: 1, bytesMax: 1 << 20, nonceAheadMax: 1 }, () => 0n).prepare(
    bytes,
  );
  if (p.kind !== 'ready') throw new Error('the workload tx does not decode');
  const out: IntakeTx[] = [];
  for (let i = 0; i < n; i++) {
    const hashHex = crypto.hash('sha256', `verified earlier ${i}`, 'hex');
    out.push({ bytes, hash: p.tx.hash, hashHex, tx: p.tx.tx });
  }
  return out;
}

/**
 * The scenarios. "Filling": the default bound, the verified FIFO holding FILLING_HASHES, as
 * a validator's after a network benchmark's tens of thousands of txs. "At bound": a tenth of
 * the default, the FIFO filled and then churned by as many hashes again, as in a node that
 * has run a while (the old FIFO's eviction cost grows with its deleted slots, so it is
 * measured in its steady state, which at the default bound takes minutes to reach).
 */
const ROWS = [
  { name: 'follower, FIFO filling', leader: false, atBound: false },
  { name: 'leader, FIFO filling', leader: true, atBound: false },
  { name: 'follower, FIFO at bound', leader: false, atBound: true },
  { name: 'leader, FIFO at bound', leader: true, atBound: true },
] as const;
const TX_COUNT_MAX_DEFAULT = 100_000;
const FILLING_HASHES = 50_000;
const TX_COUNT_MAX_AT_BOUND = 10_000;

interface Row {
  oldNsPerTx: number;
  newNsPerTx: number;
  ratio: number;
  /** Medians by phase, ns per tx. */
  oldPhases: Record<Phase, number>;
  newPhases: Record<Phase, number>;
  /** Bytes allocated per tx, in all and by phase. */
  oldBytes: Record<Phase | 'total', number>;
  newBytes: Record<Phase | 'total', number>;
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const n = opts.quick ? 6_000 : 12_000;
  const rounds = opts.quick ? 3 : 9;
  const t0 = Date.now();
  const w = workload(n);
  const signMs = Date.now() - t0;
  const earlier = verifiedEarlier(Math.max(FILLING_HASHES, 2 * 4 * TX_COUNT_MAX_AT_BOUND), w);
  const scenario = (row: (typeof ROWS)[number]): Scenario => ({
    leader: row.leader,
    txCountMax: row.atBound ? TX_COUNT_MAX_AT_BOUND : TX_COUNT_MAX_DEFAULT,
    prefill: row.atBound ? earlier : earlier.slice(0, FILLING_HASHES),
  });
  const samples: Record<string, Record<Phase | 'total', number>[]> = {};
  // Warm up both (JIT) before any measured round.
  for (const row of ROWS.slice(0, 2)) await replay([IMPLS.old, IMPLS.new], w, scenario(row));
  for (let round = 0; round < rounds; round++) {
    for (const row of ROWS) {
      const order = round % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
      const results = await replay(
        order.map((impl) => IMPLS[impl]),
        w,
        scenario(row),
      );
      for (const [k, impl] of order.entries()) {
        const r = results[k] as ReplayResult;
        const per = { intake: 0, known: 0, delivery: 0, written: 0, total: 0 };
        for (const ph of PHASES) {
          per[ph] = Math.round(r.ns[ph] / n);
          per.total += r.ns[ph] / n;
        }
        per.total = Math.round(per.total);
        const key = `${row.name}: ${impl}`;
        samples[key] = [...(samples[key] ?? []), per];
      }
    }
  }
  const med = (key: string, ph: Phase | 'total'): number => median((samples[key] ?? []).map((x) => x[ph]));
  const phasesOf = (key: string): Record<Phase, number> => ({
    intake: med(key, 'intake'),
    known: med(key, 'known'),
    delivery: med(key, 'delivery'),
    written: med(key, 'written'),
  });
  const rows: Record<string, Row> = {};
  for (const row of ROWS) {
    const oldNs = med(`${row.name}: old`, 'total');
    const newNs = med(`${row.name}: new`, 'total');
    rows[row.name] = {
      oldNsPerTx: oldNs,
      newNsPerTx: newNs,
      ratio: Math.round((newNs / oldNs) * 1000) / 1000,
      oldPhases: phasesOf(`${row.name}: old`),
      newPhases: phasesOf(`${row.name}: new`),
      oldBytes: await allocatedPerTx('old', w, scenario(row)),
      newBytes: await allocatedPerTx('new', w, scenario(row)),
    };
  }
  console.log(
    `${n} txs from ${SENDERS} senders (signed in ${signMs} ms), ${rounds} rounds, medians of ns per tx in mempool calls`,
  );
  const pad = (x: string | number, k: number): string => String(x).padStart(k);
  console.log(
    `${'scenario'.padEnd(24)} ${pad('old', 7)} ${pad('new', 7)} ${pad('new/old', 8)}  ${'old | new by phase: intake known delivery written'.padEnd(56)} ${pad('old B/tx', 9)} ${pad('new B/tx', 9)}`,
  );
  for (const [name, x] of Object.entries(rows)) {
    const ph = (p: Record<Phase, number>): string => PHASES.map((k) => pad(p[k], 6)).join('');
    console.log(
      `${name.padEnd(24)} ${pad(x.oldNsPerTx, 7)} ${pad(x.newNsPerTx, 7)} ${pad(x.ratio.toFixed(3), 8)}  ${`${ph(x.oldPhases)} | ${ph(x.newPhases)}`.padEnd(56)} ${pad(x.oldBytes.total, 9)} ${pad(x.newBytes.total, 9)}`,
    );
  }
  const result = {
    bench: 'mempool',
    quick: opts.quick,
    txs: n,
    senders: SENDERS,
    txCountMax: { filling: TX_COUNT_MAX_DEFAULT, atBound: TX_COUNT_MAX_AT_BOUND },
    verifiedFifoMax: { filling: 4 * TX_COUNT_MAX_DEFAULT, atBound: 4 * TX_COUNT_MAX_AT_BOUND },
    verifiedFifoAtStart: { filling: FILLING_HASHES, atBound: 4 * TX_COUNT_MAX_AT_BOUND },
    rounds,
    scenarios: rows,
    samplesNsPerTx: samples,
    node: process.version,
    at: new Date().toISOString(),
  };
  writeResult('mempool', result);
  return result;
}
