// Three validators in this process (real LevelDB on disk, real TCP replica channels). A
// follower holds the other follower's gossip unverified and executes it without verifying
// once the leader's own batch orders it (node/vouched-txs.ts); what no batch orders within
// the hold is verified after all, and a forged tx is caught there, counted and never lost
// track of.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../ledger/codec/binary.js';
import { encodeTx, signTx, txHash } from '../../ledger/tx.js';
import type { RunningValidator } from '../../node/start.js';
import { encodeWire } from '../../node/wire.js';
import { waitFor } from '../helpers/client.js';
import {
  committedAt,
  type InProcessNetwork,
  metricValue,
  startInProcessNetwork,
} from '../helpers/in-process-network.js';

const CHAIN_ID = 'vouch-test';

/** The count of hybster_vouched_txs_total with this outcome at a validator. */
async function vouched(v: RunningValidator, outcome: 'executed' | 'released' | 'stale'): Promise<number> {
  const m = v.validator.metrics.getSingleMetric('hybster_vouched_txs_total');
  assert.ok(m !== undefined);
  return (await m.get()).values.find((x) => x.labels.outcome === outcome)?.value ?? 0;
}

describe('node/validator: vouched signatures', function () {
  this.timeout(90_000);
  let dir: string;
  let network: InProcessNetwork | null = null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-vouch-'));
  });
  afterEach(async () => {
    await network?.stopAll();
    network = null;
    rmSync(dir, { recursive: true, force: true });
  });

  async function startThree(holdMs = 1000, flags: Record<string, string> = {}) {
    const nw = await startInProcessNetwork({
      dir,
      chainId: CHAIN_ID,
      flags: { 'vouch.holdMs': String(holdMs), ...flags },
    });
    network = nw;
    const running = nw.running.map((_, i) => nw.at(i));
    const leader = running[0]!.validator.status().leader;
    const [entry, third] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    /** Transfers from validator `signer`'s funded account, nonces from 1. */
    const transfers = (signer: number, count: number, firstNonce = 1n): Uint8Array[] =>
      Array.from({ length: count }, (_, i) =>
        encodeTx(
          signTx(
            {
              chainId: CHAIN_ID,
              from: nw.keys[signer]!,
              nonce: firstNonce + BigInt(i),
              payload: { type: 'transfer', to: new Uint8Array(32).fill(9), amount: 1n },
            },
            nw.secretKeys[signer]!,
          ),
        ),
      );
    const committedEverywhere = (txs: Uint8Array[], what: string) => committedAt(running, txs, what);
    /** A transfer from `claimed`'s account carrying a signature by `signer`'s key: forged. */
    const forgedTx = (claimed: number, signer: number): Uint8Array => {
      const [tx] = transfers(claimed, 1);
      const [other] = transfers(signer, 1);
      tx!.set(other!.subarray(other!.length - 64), tx!.length - 64);
      return tx!;
    };
    return { nw, running, leader, entry, third, transfers, forgedTx, committedEverywhere };
  }

  it("executes the other follower's txs that the leader ordered without verifying them, to the same blocks", async () => {
    const n = await startThree();
    // In one process the three share an event loop, and which socket it reads first is
    // arbitrary: the leader gets the entry's gossip 100 ms late, so that the third holds it
    // before any PREPARE carries it, as it does across processes (the leader verifies first).
    const leaderVal = n.running[n.leader]!.validator;
    const original = leaderVal.onReplicaMessages.bind(leaderVal);
    leaderVal.onReplicaMessages = (from, batch) => {
      if (from === n.entry) setTimeout(() => original(from, batch), 100);
      else original(from, batch);
    };
    const txs = n.transfers(n.entry, 40);
    const outcomes = await n.running[n.entry]!.validator.submitTxs(txs);
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      txs.map(() => 'accepted'),
    );
    await n.committedEverywhere(txs, 'the txs committed everywhere');
    // The third validator got them from the entry's gossip and in the leader's batch: two
    // vouchers, so it verified none of them.
    assert.equal(await vouched(n.running[n.third]!, 'executed'), txs.length);
    assert.equal(
      await metricValue(n.running[n.third]!, 'hybster_vouched_held'),
      0,
      'forgotten once executed',
    );
    // The entry and the leader verified every one of them themselves.
    for (const i of [n.entry, n.leader]) assert.equal(await vouched(n.running[i]!, 'executed'), 0);
    const tips = n.running.map((r) => r.validator.store.latestTip());
    for (const t of tips) {
      assert.equal(t.height, tips[0]!.height);
      assert.equal(toHex(t.hash), toHex(tips[0]!.hash));
    }
  });

  it('drops a held tx whose nonce a block used meanwhile without verifying it (gossip slower than the block)', async () => {
    const n = await startThree(200);
    const txs = n.transfers(n.entry, 3);
    await n.running[n.entry]!.validator.submitTxs(txs);
    await n.committedEverywhere(txs, 'the txs committed everywhere');
    const third = n.running[n.third]!;
    const releasedBefore = await vouched(third, 'released');
    // The same gossip once more, after its block: held (nothing in the mempool knows it now).
    third.validator.onReplicaMessages(n.entry, [encodeWire({ type: 'txs', txs: [txs[1]!] })]);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 1);
    await waitFor(
      async () => (await vouched(third, 'stale')) === 1,
      10_000,
      'the late gossip dropped as stale',
    );
    assert.equal(await vouched(third, 'released'), releasedBefore, 'not verified, not put in the mempool');
    assert.equal(await metricValue(third, 'hybster_gossip_forged_total'), 0);
  });

  it('verifies a held tx that no batch ordered once its hold is over, and counts a forged one against its peer', async () => {
    const n = await startThree(300);
    const third = n.running[n.third]!;
    // The entry follower turns faulty: it gossips to the third a tx whose signature is another
    // account's (the leader never sees it, so no batch orders it), and one good tx likewise.
    const [good] = n.transfers(n.entry, 1);
    const forged = n.forgedTx(n.leader, n.third);
    third.validator.onReplicaMessages(n.entry, [encodeWire({ type: 'txs', txs: [forged, good!] })]);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 2, 'both held, unverified');
    await waitFor(
      async () => (await metricValue(third, 'hybster_gossip_forged_total')) === 1,
      10_000,
      'the forged tx verified after its hold and refused',
    );
    assert.equal(await vouched(third, 'released'), 2);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 0);
    // The good one entered the third's mempool; from there re-gossip hands it to the leader
    // (which never got it), and it commits. The forged one is nowhere.
    await n.committedEverywhere([good!], 'the good held tx committed after its release');
    for (const r of n.running) assert.equal(await r.validator.store.getTx(txHash(forged)), null);
  });

  it("verifies the leader's own gossip at once: the leader is the batch's voucher and cannot be both", async () => {
    const n = await startThree();
    const third = n.running[n.third]!;
    const forged = n.forgedTx(n.entry, n.third);
    third.validator.onReplicaMessages(n.leader, [encodeWire({ type: 'txs', txs: [forged] })]);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 0);
    await waitFor(
      async () => (await metricValue(third, 'hybster_gossip_forged_total')) === 1,
      5_000,
      "the leader's forged gossip refused at once",
    );
    assert.equal(await vouched(third, 'released'), 0);
  });

  it('verifies gossip at once with vouch.enabled=false', async () => {
    const n = await startThree(1000, { 'vouch.enabled': 'false' });
    const third = n.running[n.third]!;
    const forged = n.forgedTx(n.entry, n.third);
    third.validator.onReplicaMessages(n.entry, [encodeWire({ type: 'txs', txs: [forged] })]);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 0);
    await waitFor(
      async () => (await metricValue(third, 'hybster_gossip_forged_total')) === 1,
      5_000,
      'the forged gossip refused at once',
    );
  });

  it('releases everything held when the leader fails, and the new view commits it', async () => {
    // Held for up to a minute: only the view change can release them in this test.
    const n = await startThree(60_000);
    // The leader never hears the entry's gossip (nor its re-gossip): it cannot order the txs,
    // the entry's request timer fires, and the view changes once the leader is gone too.
    const leaderVal = n.running[n.leader]!.validator;
    const original = leaderVal.onReplicaMessages.bind(leaderVal);
    leaderVal.onReplicaMessages = (from, batch) => original(from, from === n.entry ? [] : batch);
    const txs = n.transfers(n.entry, 10);
    await n.running[n.entry]!.validator.submitTxs(txs);
    const third = n.running[n.third]!;
    await waitFor(
      async () => (await metricValue(third, 'hybster_vouched_held')) === txs.length,
      5_000,
      'the third holds them',
    );
    await n.nw.stop(n.leader);
    const survivors = [n.entry, n.third].map((i) => n.running[i]!);
    await committedAt(survivors, txs, 'the held txs committed in the new view');
    assert.equal(await vouched(third, 'released'), txs.length, 'released by the view change, not by time');
    assert.equal(await vouched(third, 'executed'), 0);
    assert.equal(await metricValue(third, 'hybster_vouched_held'), 0);
  });
});
