// A real 3-validator network over libfabric's shm provider (separate processes, real
// LevelDB, real /dev/shm regions): every validator listens at the shm name its genesis
// endpoint `rdma+shm://host:port` stands for, peers dial those names straight from
// genesis, transactions submitted to every validator commit into the same blocks, and a
// SIGKILLed follower comes back under the same name (its stale region in /dev/shm does
// not stop it) and catches up.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rdmaAvailable } from '../../rdma-native/native.js';
import { isShmRegionOf, parseEndpoint } from '../../rdma-native/wire.js';
import {
  type Account,
  blockAt,
  heightOf,
  loadAccounts,
  status,
  submit,
  transfer,
  waitAllReady,
  waitFor,
} from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';

/** The /dev/shm regions of the node a `rdma+shm://host:port` endpoint names. */
function regionsOf(endpoint: string): string[] {
  const node = parseEndpoint(endpoint)?.shmNode;
  assert.ok(node, `an shm endpoint in host:port form: ${endpoint}`);
  return readdirSync('/dev/shm').filter((f) => isShmRegionOf(f, node));
}

function endpointOf(net: Testnet, index: number): string {
  const genesis = JSON.parse(readFileSync(join(net.dir, 'validator0', 'genesis.json'), 'utf8')) as {
    validators: { endpoints: { rdma?: string } }[];
  };
  const e = genesis.validators[index]?.endpoints.rdma;
  assert.ok(e, `validator ${index} has an rdma endpoint in genesis`);
  return e;
}

/** One account submitting transfers one after another (nonces in order), in commit mode. */
class Load {
  private count = 0;
  private error: unknown;
  private running = true;
  private readonly loop: Promise<void>;

  constructor(account: Account, urls: readonly string[], to: Uint8Array) {
    this.loop = (async () => {
      for (let k = 0; this.running; k++) {
        const url = urls[k % urls.length] as string;
        const r = await submit(url, transfer(CHAIN_ID, account, to, 1n).hex, 'commit', 20_000);
        assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.body)}`);
        this.count++;
      }
    })().catch((e: unknown) => {
      this.error = e;
    });
  }

  /** Transfers committed so far; throws what stopped the load, if anything did. */
  get committed(): number {
    if (this.error !== undefined) throw this.error;
    return this.count;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    if (this.error !== undefined) throw this.error;
  }
}

describe('integration: 3-validator network over rdma with the shm provider', function () {
  this.timeout(120_000);
  let net: Testnet;
  let accounts: Account[];
  let recipient: Uint8Array;

  before(async function () {
    const a = rdmaAvailable();
    const shm = existsSync('/dev/shm');
    if (!a.ok || !shm) {
      const reason = a.ok ? 'no /dev/shm' : a.reason;
      if (process.env.CI) throw new Error(`RDMA shm transport unavailable under CI: ${reason}`);
      this.skip();
    }
    net = await startTestnet({
      validators: 3,
      transport: 'rdma',
      testnetArgs: ['--provider', 'shm', '--accounts', '4'],
    });
    accounts = loadAccounts(net.dir);
    recipient = (accounts.pop() as Account).address;
    await waitAllReady(net.apiUrls);
  });

  after(async () => {
    if (!net) return;
    const endpoints = [0, 1, 2].map((i) => endpointOf(net, i));
    await net.stop();
    // stop() SIGKILLs: nothing unlinked the 16 MiB regions, and no successor will take them over.
    for (const e of endpoints) for (const r of regionsOf(e)) rmSync(`/dev/shm/${r}`, { force: true });
  });

  it('gives every validator its own shm region named after its genesis endpoint', async () => {
    for (const i of [0, 1, 2]) {
      const e = endpointOf(net, i);
      assert.equal(regionsOf(e).length, 1, `one region for validator ${i} (${e})`);
    }
  });

  it('commits transactions submitted to every validator, in the same blocks everywhere', async () => {
    const a = accounts[0] as Account;
    for (let i = 0; i < 6; i++) {
      const url = net.apiUrls[i % 3] as string;
      const r = await submit(url, transfer(CHAIN_ID, a, recipient, 2n).hex, 'commit', 20_000);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.status, 'committed');
    }
    const h = await heightOf(net.apiUrls[0] as string);
    await waitFor(
      async () => (await Promise.all(net.apiUrls.map(heightOf))).every((x) => x >= h),
      15_000,
      'heights',
    );
    const hashes = await Promise.all(net.apiUrls.map(async (u) => (await blockAt(u, h)).hash));
    assert.equal(new Set(hashes).size, 1, `block hashes at ${h}: ${hashes.join(', ')}`);
  });

  it('lets a follower SIGKILLed under load restart under the same shm name and catch up', async () => {
    const leader = Number((await status(net.apiUrls[0] as string)).leader);
    const follower = [0, 1, 2].find((i) => i !== leader) as number;
    const others = [0, 1, 2].filter((i) => i !== follower).map((i) => net.apiUrls[i] as string);
    const endpoint = endpointOf(net, follower);
    // Killed while replica messages flow to and from it: a peer dying inside the provider's
    // shared queues must not take the survivors down with it.
    const load = new Load(accounts[1] as Account, others, recipient);
    await waitFor(async () => load.committed >= 5, 20_000, 'load committing');
    await net.kill(follower, 'SIGKILL');
    // SIGKILL gives the provider no chance to unlink the region: it is left behind.
    assert.equal(regionsOf(endpoint).length, 1, 'the killed follower left its region');
    const atKill = load.committed;
    await waitFor(async () => load.committed >= atKill + 5, 20_000, 'the survivors committing');
    await load.stop();
    await net.restart(follower);
    assert.equal(regionsOf(endpoint).length, 1, 'the restarted follower has one region under its name');
    const url = net.apiUrls[follower] as string;
    const target = await heightOf(others[0] as string);
    await waitFor(async () => (await heightOf(url)) >= target, 40_000, 'the restarted follower catching up');
    // It takes part again: a tx submitted to it commits, and all agree on the block.
    const r = await submit(
      url,
      transfer(CHAIN_ID, accounts[2] as Account, recipient, 1n).hex,
      'commit',
      30_000,
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const h = Math.min(...(await Promise.all(net.apiUrls.map(heightOf))));
    const hashes = await Promise.all(net.apiUrls.map(async (u) => (await blockAt(u, h)).hash));
    assert.equal(new Set(hashes).size, 1, `block hashes at ${h}: ${hashes.join(', ')}`);
  });
});
