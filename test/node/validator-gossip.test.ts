// Three validators in this process (real LevelDB on disk, real TCP replica channels). Which
// txs travel as gossip: a follower gossips its clients' txs to the leader at once, and so does
// an idle leader; a leader with a batch in flight holds its clients' txs back and gossips none
// that its next PREPARE carried to the followers anyway (node/validator.ts gossip); at low load
// a follower forwards a lone submission to the leader before verifying it (forward).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateTestnet } from '../../genesis/generate.js';
import { toHex } from '../../ledger/codec/binary.js';
import { generateKeyPair, type KeyPair } from '../../ledger/keys.js';
import { encodeTx, signTx } from '../../ledger/tx.js';
import { type RunningValidator, startValidator } from '../../node/start.js';
import { decodeWire } from '../../node/wire.js';
import { waitFor } from '../helpers/client.js';
import { committedAt, metricValue, randomBasePort } from '../helpers/in-process-network.js';

const CHAIN_ID = 'gossip-test';
const sink = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

function transfers(from: KeyPair, count: number, firstNonce = 1n, signer: KeyPair = from): Uint8Array[] {
  const to = new Uint8Array(32).fill(7);
  return Array.from({ length: count }, (_, i) =>
    encodeTx(
      signTx(
        {
          chainId: CHAIN_ID,
          from: from.publicKey,
          nonce: firstNonce + BigInt(i),
          payload: { type: 'transfer', to, amount: 1n },
        },
        signer.secretKey,
      ),
    ),
  );
}

describe('node/validator: tx gossip', function () {
  this.timeout(90_000);
  let dir: string;
  const running: RunningValidator[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-gossip-'));
  });
  afterEach(async () => {
    for (const r of running) await r.stop();
    running.length = 0;
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Starts the network; records every tx each validator receives as gossip and as a forward
   * ("from>to" -> tx hex).
   */
  async function network(consensus: { batchTxsMax?: number; requestTimeoutMs?: number } = {}) {
    const viaLeader = generateKeyPair();
    const viaFollower = generateKeyPair();
    const basePort = randomBasePort();
    const net = await generateTestnet({
      validators: 3,
      outDir: dir,
      chainId: CHAIN_ID,
      basePort,
      consensus,
      accounts: [viaLeader, viaFollower].map((k) => ({ address: k.publicKey, balance: 1_000_000n })),
    });
    const flags = { 'api.port': '0', 'p2p.enabled': 'false', 'log.level': 'warn' };
    for (let i = 0; i < 3; i++)
      running.push(await startValidator({ home: net.nodes[i]!.home, flags, logDestination: sink() }));
    // Ready needs f peers; gossip is only seen by peers with a channel up, so wait for all of them.
    await waitFor(
      async () =>
        running.every((r) => r.validator.ready() && r.validator.status().peers.every((p) => p.connected)),
      30_000,
      'every validator connected to every other',
    );
    const leader = running[0]!.validator.status().leader;
    const followers = [0, 1, 2].filter((i) => i !== leader);
    const gossiped = new Map<string, Set<string>>();
    const forwarded = new Map<string, Set<string>>();
    /** While set, followers drop the leader's consensus messages (its batches stay in flight). */
    const cut = { leaderConsensus: false };
    for (const [to, r] of running.entries()) {
      const val = r.validator;
      const original = val.onReplicaMessages.bind(val);
      val.onReplicaMessages = (from, batch) => {
        const kept: Uint8Array[] = [];
        for (const bytes of batch) {
          const w = decodeWire(bytes, { consensusBytesMax: 64 << 20, blockBytesMax: 64 << 20 });
          if (w.ok && (w.value.type === 'txs' || w.value.type === 'forward')) {
            const into = w.value.type === 'txs' ? gossiped : forwarded;
            const seen = into.get(`${from}>${to}`) ?? new Set<string>();
            for (const tx of w.value.txs) seen.add(toHex(tx));
            into.set(`${from}>${to}`, seen);
          }
          if (cut.leaderConsensus && from === leader && w.ok && w.value.type === 'consensus') continue;
          kept.push(bytes);
        }
        original(from, kept);
      };
    }
    const countOf = (m: Map<string, Set<string>>, from: number, to: number, txs: Uint8Array[]): number => {
      const got = m.get(`${from}>${to}`) ?? new Set();
      return txs.filter((tx) => got.has(toHex(tx))).length;
    };
    const gossipedOf = (from: number, to: number, txs: Uint8Array[]) => countOf(gossiped, from, to, txs);
    const forwardedOf = (from: number, to: number, txs: Uint8Array[]) => countOf(forwarded, from, to, txs);
    const committedEverywhere = (txs: Uint8Array[], what: string) => committedAt(running, txs, what);
    const accept = async (at: number, txs: Uint8Array[]): Promise<void> => {
      const outcomes = await running[at]!.validator.submitTxs(txs);
      assert.deepEqual(
        outcomes.map((o) => o.kind),
        txs.map(() => 'accepted'),
      );
    };
    return {
      viaLeader,
      viaFollower,
      leader,
      followers,
      cut,
      gossipedOf,
      forwardedOf,
      committedEverywhere,
      accept,
    };
  }

  it('gossips the txs of a follower to the leader, and those of an idle leader to both followers', async () => {
    const n = await network();
    const mine = transfers(n.viaFollower, 20);
    await n.accept(n.followers[0]!, mine);
    await n.committedEverywhere(mine, "the follower's txs committed everywhere");
    assert.equal(n.gossipedOf(n.followers[0]!, n.leader, mine), mine.length, 'follower to leader');
    // An idle leader proposes at once and gossips too: its followers verify during its write.
    const leaders = transfers(n.viaLeader, 20);
    await n.accept(n.leader, leaders);
    await n.committedEverywhere(leaders, "the leader's txs committed everywhere");
    for (const f of n.followers) assert.equal(n.gossipedOf(n.leader, f, leaders), leaders.length, `to ${f}`);
  });

  it("forwards a follower's lone txs to the leader unverified; their verified gossip skips the leader", async () => {
    const n = await network();
    const [entry, third] = n.followers as [number, number];
    // One at a time, each committed before the next: low load, where forwarding is on.
    const mine = transfers(n.viaFollower, 5);
    for (const tx of mine) {
      await n.accept(entry, [tx]);
      await n.committedEverywhere([tx], 'a lone tx committed everywhere');
    }
    assert.equal(n.forwardedOf(entry, n.leader, mine), mine.length, 'forwarded to the leader');
    assert.equal(n.gossipedOf(entry, n.leader, mine), 0, 'not gossiped to the leader as well');
    assert.equal(n.gossipedOf(entry, third, mine), mine.length, 'gossiped, verified, to the other follower');
    assert.equal(n.forwardedOf(entry, third, mine), 0, 'forwarded to the leader only');
    // A bad signature is forwarded before the follower refuses it: the leader refuses it too,
    // and does not count it against the follower (a forward vouches for nothing).
    const [forged] = transfers(n.viaFollower, 1, 6n, n.viaLeader);
    const [outcome] = await running[entry]!.validator.submitTxs([forged!]);
    assert.equal(outcome?.kind === 'rejected' && outcome.code, 'bad-signature');
    await waitFor(
      async () => n.forwardedOf(entry, n.leader, [forged!]) === 1,
      10_000,
      'the forged tx forwarded',
    );
    const [good] = transfers(n.viaFollower, 1, 6n);
    await n.accept(entry, [good!]);
    await n.committedEverywhere([good!], 'the good tx with that nonce committed everywhere');
    assert.equal(await metricValue(running[n.leader]!, 'hybster_gossip_forged_total'), 0);
    assert.equal(n.gossipedOf(entry, third, [forged!]), 0, 'the forged tx is gossiped nowhere');
  });

  it('has a leader with a batch in flight gossip none of the txs its next PREPARE carries', async () => {
    // Batches of 10: a full batch is cut at once even with another in flight.
    const n = await network({ batchTxsMax: 10, requestTimeoutMs: 30_000 });
    const all = transfers(n.viaLeader, 20);
    const first = all.slice(0, 10);
    const second = all.slice(10);
    n.cut.leaderConsensus = true;
    await n.accept(n.leader, first);
    // Its PREPARE reaches no follower: the first batch stays in flight.
    await new Promise((r) => setTimeout(r, 200));
    await n.accept(n.leader, second);
    await new Promise((r) => setTimeout(r, 300));
    n.cut.leaderConsensus = false;
    await n.committedEverywhere([...first, ...second], 'both batches committed');
    for (const f of n.followers) {
      assert.equal(n.gossipedOf(n.leader, f, first), 10, `idle leader to ${f}`);
      assert.equal(n.gossipedOf(n.leader, f, second), 0, `loaded leader to ${f}`);
    }
  });
});
