// A real 3-validator network (separate processes, real LevelDB, real sockets or
// libfabric) driven through the REST API: commits from any validator, a SIGKILLed
// leader under steady load, a restarted follower catching up by state transfer, and
// identical chains at the end. Run on both transports.
import assert from 'node:assert/strict';
import { rdmaAvailable } from '../../rdma-native/native.js';
import {
  type Account,
  blockAt,
  getJson,
  heightOf,
  loadAccounts,
  metric,
  status,
  submit,
  transfer,
  waitAllReady,
  waitFor,
} from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';

/** Each account submits transfers one after another (nonces stay in order), in commit mode. */
class Load {
  readonly acknowledged: string[] = [];
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(accounts: Account[], urls: () => string[], to: Uint8Array) {
    this.loops = accounts.map(async (a, i) => {
      let k = i;
      while (this.running) {
        const us = urls();
        const url = us[k++ % us.length] as string;
        const t = transfer(CHAIN_ID, a, to, 1n);
        let ok = false;
        while (!ok && this.running) {
          try {
            const r = await submit(url, t.hex, 'commit', 15_000);
            if (r.status === 200 && r.body.status === 'committed') {
              this.acknowledged.push(String(r.body.hash));
              ok = true;
            } else if (r.status === 202) {
              ok = true; // pending: accepted but not acknowledged as committed; not counted
              await new Promise((res) => setTimeout(res, 200));
            } else {
              this.failures.push(`${r.status} ${JSON.stringify(r.body)}`);
              await new Promise((res) => setTimeout(res, 200));
              ok = r.status === 409; // stale nonce: an earlier attempt got through
            }
          } catch {
            // the validator we asked is down: try another one with the same tx
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

for (const transport of ['tcp', 'rdma'] as const) {
  describe(`integration: 3-validator network over ${transport}`, function () {
    this.timeout(120_000);
    let net: Testnet;
    let accounts: Account[];
    let recipient: Uint8Array;
    let leader = 0;

    before(async function () {
      if (transport === 'rdma') {
        const a = rdmaAvailable();
        if (!a.ok) {
          if (process.env.CI) throw new Error(`RDMA transport unavailable under CI: ${a.reason}`);
          this.skip();
        }
      }
      net = await startTestnet({ validators: 3, transport, testnetArgs: ['--accounts', '5'] });
      accounts = loadAccounts(net.dir);
      recipient = (accounts.pop() as Account).address;
      await waitAllReady(net.apiUrls);
    });

    after(async () => {
      await net?.stop();
    });

    it('commits transactions submitted to any validator, in the same blocks everywhere', async () => {
      const a = accounts[0] as Account;
      for (let i = 0; i < 6; i++) {
        const url = net.apiUrls[i % 3] as string;
        const r = await submit(url, transfer(CHAIN_ID, a, recipient, 2n).hex, 'commit', 15_000);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.status, 'committed');
        assert.deepEqual(r.body.result, { ok: true });
      }
      const h = await heightOf(net.apiUrls[0] as string);
      await waitFor(
        async () => (await Promise.all(net.apiUrls.map(heightOf))).every((x) => x >= h),
        10_000,
        'heights',
      );
      const blocks = await Promise.all(net.apiUrls.map((u) => blockAt(u, h)));
      assert.equal(new Set(blocks.map((b) => b.hash)).size, 1);
      leader = Number((await status(net.apiUrls[0] as string)).leader);
    });

    it('keeps committing after the leader is SIGKILLed under steady load, losing no acknowledged tx', async () => {
      const followers = [0, 1, 2].filter((i) => i !== leader);
      const urls = followers.map((i) => net.apiUrls[i] as string);
      const load = new Load(accounts.slice(0, 3), () => urls, recipient);
      await waitFor(async () => load.acknowledged.length >= 5, 20_000, 'load committing');
      const viewBefore = Number((await status(urls[0] as string)).view);
      await net.kill(leader, 'SIGKILL');
      const ackAtKill = load.acknowledged.length;
      await waitFor(
        async () => load.acknowledged.length >= ackAtKill + 10,
        40_000,
        'commits after the leader died',
      );
      await load.stop();
      const s = await status(urls[0] as string);
      assert.ok(Number(s.view) > viewBefore, `view ${s.view} should have moved past ${viewBefore}`);
      assert.notEqual(Number(s.leader), leader);
      // Every tx acknowledged as committed is in the chain of both survivors.
      for (const u of urls) {
        for (const hash of load.acknowledged) {
          const t = await getJson(`${u}/v1/txs/${hash}`);
          assert.equal(t.status, 'committed', `${hash} missing on ${u}`);
        }
      }
      await net.restart(leader);
    });

    it('lets a killed follower restart and catch up by state transfer', async () => {
      // Start from a settled network: every validator in the same view.
      let current = -1;
      await waitFor(
        async () => {
          const ss = await Promise.all(net.apiUrls.map(status));
          current = Number(ss[0]?.leader);
          return new Set(ss.map((s) => `${s.view}`)).size === 1;
        },
        30_000,
        'all validators in one view',
      );
      const follower = [0, 1, 2].find((i) => i !== current) as number;
      const others = [0, 1, 2].filter((i) => i !== follower).map((i) => net.apiUrls[i] as string);
      await net.kill(follower, 'SIGKILL');
      // Enough blocks to pass checkpoints (testnet K = 16), so the follower is behind a stable one.
      const start = await heightOf(others[0] as string);
      const load = new Load(accounts.slice(0, 4), () => others, recipient);
      await waitFor(
        async () => (await heightOf(others[0] as string)) >= start + 24,
        60_000,
        '24 more blocks',
      );
      await load.stop();
      await net.restart(follower);
      const url = net.apiUrls[follower] as string;
      const target = await heightOf(others[0] as string);
      await waitFor(
        async () => (await heightOf(url)) >= target,
        40_000,
        'the restarted follower catching up',
      );
      assert.ok(
        ((await metric(url, 'hybster_state_transfer_blocks_total')) ?? 0) > 0,
        'blocks came by state transfer',
      );
    });

    it('ends with identical block hashes and state digests on every validator', async () => {
      // One more commit so everybody (including restarted validators) is at a common height.
      const r = await submit(
        net.apiUrls[0] as string,
        transfer(CHAIN_ID, accounts[0] as Account, recipient, 1n).hex,
        'commit',
        15_000,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const h = Math.min(...(await Promise.all(net.apiUrls.map(heightOf))));
      await waitFor(
        async () => (await Promise.all(net.apiUrls.map(heightOf))).every((x) => x >= h),
        15_000,
        'common height',
      );
      for (const height of [1, Math.floor(h / 2), h]) {
        const blocks = await Promise.all(net.apiUrls.map((u) => blockAt(u, height)));
        assert.equal(new Set(blocks.map((b) => b.hash)).size, 1, `block hashes differ at ${height}`);
        assert.equal(new Set(blocks.map((b) => b.stateDigest)).size, 1, `state digests differ at ${height}`);
      }
    });
  });
}
