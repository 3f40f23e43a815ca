import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChainSpec } from '../../node/chain-spec.js';
import { loadConfig, transportListenEndpoint } from '../../node/config.js';
import { writeTestnet } from '../../node/home.js';
import { OpsError } from '../../node/ops/errors.js';
import { rehost, rehostMultiaddr, retargetTestnet } from '../../node/ops/retarget.js';

describe('retargeting a generated testnet to other hosts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hyb-retarget-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rewrites host and port and keeps schemes and peer ids', () => {
    assert.equal(rehost('127.0.0.1:4000', '10.213.0.10', 9000), '10.213.0.10:9000');
    assert.equal(
      rehost('rdma+tcp;ofi_rxm://127.0.0.1:4000', 'validator1', 9000),
      'rdma+tcp;ofi_rxm://validator1:9000',
    );
    assert.equal(
      rehostMultiaddr('/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo', 'validator2', 8000),
      '/dns4/validator2/tcp/8000/p2p/12D3Koo',
    );
    assert.equal(
      rehostMultiaddr('/ip4/127.0.0.1/tcp/4001', '10.213.0.11', 8000),
      '/ip4/10.213.0.11/tcp/8000',
    );
  });

  it('gives every validator the same genesis, accepted by the node, with each validator at its host', async () => {
    const hosts = ['10.213.0.10', '10.213.0.11', '10.213.0.12'];
    await writeTestnet({
      outDir: dir,
      validators: 3,
      transport: 'rdma',
      provider: 'tcp;ofi_rxm',
      pillars: 1,
      apiPorts: [7100, 7101, 7102],
      basePort: 0,
      chainId: 'retarget-test',
      accounts: 1,
    });
    await retargetTestnet({ dir, hosts, transportPort: 9000, p2pPort: 8000, apiPort: 7000 });
    const texts = await Promise.all(
      hosts.map((_, i) => readFile(join(dir, `validator${i}`, 'genesis.json'), 'utf8')),
    );
    assert.ok(
      texts.every((t) => t === texts[0]),
      'identical genesis files, so one genesis hash',
    );
    const spec = loadChainSpec(texts[0]!, 'genesis.json');
    spec.validators.forEach((v, i) => {
      for (const ep of Object.values(v.endpoints))
        assert.ok(String(ep).includes(`${hosts[i]}:9000`), `${ep}`);
    });
    for (let i = 0; i < 3; i++) {
      const loaded = loadConfig({ home: join(dir, `validator${i}`), env: {} });
      assert.equal(loaded.config.api.host, hosts[i]);
      assert.equal(loaded.config.api.port, 7000);
      assert.equal(transportListenEndpoint(loaded.config), `rdma+tcp;ofi_rxm://${hosts[i]}:9000`);
      assert.equal(loaded.config.p2p.listen, `/ip4/${hosts[i]}/tcp/8000`);
    }
  });

  it('refuses a home whose database exists, since the genesis hash would change under it', async () => {
    await writeTestnet({
      outDir: dir,
      validators: 1,
      transport: 'tcp',
      provider: 'tcp;ofi_rxm',
      pillars: 1,
      apiPorts: [7100],
      basePort: 0,
      chainId: 'retarget-test',
      accounts: 0,
    });
    const { ClassicLevel } = await import('classic-level');
    const db = new ClassicLevel(join(dir, 'validator0', 'data'));
    await db.open();
    await db.close();
    await assert.rejects(
      retargetTestnet({ dir, hosts: ['h0'], transportPort: 9000, p2pPort: 8000, apiPort: 7000 }),
      (e: unknown) => e instanceof OpsError && e.code === 'target-exists',
    );
  });

  it('refuses a host list that does not match the validator count', async () => {
    await writeTestnet({
      outDir: dir,
      validators: 1,
      transport: 'tcp',
      provider: 'tcp;ofi_rxm',
      pillars: 1,
      apiPorts: [7100],
      basePort: 0,
      chainId: 'retarget-test',
      accounts: 0,
    });
    await assert.rejects(
      retargetTestnet({ dir, hosts: ['h0', 'h1', 'h2'], transportPort: 9000, p2pPort: 8000, apiPort: 7000 }),
      (e: unknown) => e instanceof OpsError && e.code === 'bad-home',
    );
  });
});
