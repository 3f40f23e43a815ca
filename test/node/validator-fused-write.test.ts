// Three validators in this process (real LevelDB on disk, real TCP replica channels, real
// API sockets). At low load a follower writes the PREPARE's consensus record and the block
// in one synced batch before its COMMIT leaves (node/validator.ts drainFused): observed at
// the leader, every follower COMMIT arrives when the follower's block is already durable,
// and its consensus records are on disk with it. A follower restarted from that state
// goes on committing with the others.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage } from '../../consensus/index.js';
import { loadChainSpec } from '../../node/chain-spec.js';
import type { RunningValidator } from '../../node/start.js';
import { decodeWire } from '../../node/wire.js';
import { submit, transfer, waitFor } from '../helpers/client.js';
import { type InProcessNetwork, startInProcessNetwork } from '../helpers/in-process-network.js';

const CHAIN_ID = 'fused-write-test';

describe('node/validator: consensus state and block in one synced write at low load', function () {
  this.timeout(90_000);
  let dir: string;
  let network: InProcessNetwork | null = null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-fused-'));
  });
  afterEach(async () => {
    await network?.stopAll();
    network = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it("has a follower's COMMIT leave only once its block and consensus records are durable", async () => {
    // Every channel up first (the helper waits for it): a follower that connects late gets
    // the first blocks by state transfer, not as fused PREPAREs.
    const nw = await startInProcessNetwork({ dir, chainId: CHAIN_ID });
    network = nw;
    const running = nw.running;
    const v = (i: number): RunningValidator => nw.at(i);
    const leader = v(0).validator.status().leader;
    const followers = [0, 1, 2].filter((i) => i !== leader);
    const config = loadChainSpec(readFileSync(nw.net.nodes[0]!.genesisPath, 'utf8'), 'genesis').consensus;

    // At the leader: for each follower COMMIT that arrives, was that follower's block durable?
    const commits: { from: number; order: bigint; durableHeight: bigint }[] = [];
    const observe = (r: RunningValidator): void => {
      const val = r.validator;
      const original = val.onReplicaMessages.bind(val);
      val.onReplicaMessages = (from, batch) => {
        for (const bytes of batch) {
          const w = decodeWire(bytes, { consensusBytesMax: 64 << 20, blockBytesMax: 64 << 20 });
          if (!w.ok || w.value.type !== 'consensus') continue;
          const m = decodeMessage(w.value.bytes, config);
          if (!m.ok || m.value.type !== 'commit') continue;
          const follower = running[from];
          if (follower)
            commits.push({
              from,
              order: m.value.order,
              durableHeight: follower.validator.store.durableHeight(),
            });
        }
        original(from, batch);
      };
    };

    const from = nw.account(followers[0]!);
    const to = new Uint8Array(32).fill(3);
    const commitOne = async (i: number): Promise<number> => {
      const api = v(i).apiUrl as string;
      const r = await submit(api, transfer(CHAIN_ID, from, to, 1n).hex, 'commit', 20_000);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.status, 'committed');
      const h = Number((r.body.location as { height: number }).height);
      // Low load means every validator idle when the next PREPARE comes: on a starved machine
      // a follower left behind would get several PREPAREs in one group, which fuse nothing.
      await waitFor(
        async () => running.every((x) => x === null || x.validator.store.durableHeight() >= BigInt(h)),
        30_000,
        `every validator to hold block ${h}`,
      );
      return h;
    };
    // One tx at a time (low load), to followers and to the leader.
    observe(v(leader));
    let height = 0;
    for (let k = 0; k < 6; k++) height = await commitOne(k % 2 === 0 ? followers[0]! : leader);

    const ofFollowers = commits.filter((c) => followers.includes(c.from));
    assert.ok(ofFollowers.length >= 6, `the leader saw ${ofFollowers.length} follower COMMITs`);
    for (const c of ofFollowers)
      assert.ok(
        c.durableHeight >= c.order + 1n,
        `follower ${c.from}'s COMMIT for order ${c.order} arrived with its durable height at ${c.durableHeight}`,
      );
    // The block's batch carried the follower's consensus records: its PREPARE entry for the
    // last committed order (slot = order mod window, one pillar) is on disk.
    const lastOrder = BigInt(height - 1);
    await waitFor(
      async () => followers.every((i) => v(i).validator.store.durableHeight() >= BigInt(height)),
      30_000,
      'both followers to hold the last block',
    );
    for (const f of followers) {
      const slot = await v(f).validator.store.getMeta(
        `consensus/p0/slot/${lastOrder % BigInt(config.window)}`,
      );
      assert.ok(slot !== null, `follower ${f} holds no consensus entry for order ${lastOrder}`);
    }

    // A follower stopped and started again restores that state and keeps committing.
    const f = followers[1]!;
    await nw.stop(f);
    await nw.start(f);
    await waitFor(async () => v(f).validator.ready(), 30_000, 'the restarted follower to be ready');
    const after = await commitOne(f);
    assert.equal(after, height + 1);
    await waitFor(
      async () => [0, 1, 2].every((i) => v(i).validator.status().height >= BigInt(after)),
      30_000,
      'every validator at the new height',
    );
    const hashes = await Promise.all(
      [0, 1, 2].map(async (i) => (await v(i).validator.store.getBlock(BigInt(after)))?.header.stateDigest),
    );
    assert.deepEqual(hashes[0], hashes[1]);
    assert.deepEqual(hashes[1], hashes[2]);
  });
});
