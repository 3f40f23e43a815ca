// One validator in this process, from a home written by genesis/generate: the whole
// start path (config, genesis, key file check, LevelDB, transport, consensus, executor,
// API) with a real store on disk and a real API socket.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateTestnet } from '../../genesis/generate.js';
import { fromHex, toHex } from '../../ledger/codec/binary.js';
import { encodeTx, signTx } from '../../ledger/tx.js';
import { startValidator } from '../../node/start.js';

const sink = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

describe('node/start', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a one-validator network from a generated home and commits a signed transfer', async () => {
    const net = await generateTestnet({ validators: 1, outDir: dir, chainId: 'start-test' });
    const node = net.nodes[0];
    assert.ok(node);
    const flags = {
      'api.port': '0',
      'p2p.enabled': 'false',
      'transport.listen': '127.0.0.1:0',
      'log.level': 'warn',
    };
    const running = await startValidator({ home: node.home, flags, logDestination: sink() });
    try {
      const key = JSON.parse(readFileSync(node.keyPath, 'utf8')) as { publicKey: string; secretKey: string };
      const from = fromHex(key.publicKey);
      const tx = encodeTx(
        signTx(
          {
            chainId: 'start-test',
            from,
            nonce: 1n,
            payload: { type: 'transfer', to: new Uint8Array(32).fill(9), amount: 5n },
          },
          fromHex(key.secretKey),
        ),
      );
      const res = await fetch(`${running.apiUrl}/v1/txs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tx: toHex(tx), mode: 'commit', timeoutMs: 20_000 }),
      });
      const body = (await res.json()) as {
        status: string;
        result: { ok: boolean };
        location: { height: number };
      };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.status, 'committed');
      assert.equal(body.result.ok, true);
      assert.equal(running.validator.status().height, BigInt(body.location.height));
    } finally {
      await running.stop();
    }
    // The block survives a restart.
    const again = await startValidator({ home: node.home, flags, logDestination: sink() });
    try {
      assert.ok(again.validator.status().height >= 1n);
    } finally {
      await again.stop();
    }
  });

  it('refuses a key file that group or others can read', async () => {
    const net = await generateTestnet({ validators: 1, outDir: dir });
    const node = net.nodes[0];
    assert.ok(node);
    chmodSync(node.keyPath, 0o644);
    await assert.rejects(
      startValidator({ home: node.home, flags: { 'p2p.enabled': 'false' }, logDestination: sink() }),
      /group or others can access it/,
    );
  });

  it('refuses consensus parameters whose largest NEW-VIEW cannot fit a replica frame, and says what fits', async () => {
    const net = await generateTestnet({
      validators: 1,
      outDir: dir,
      consensus: { window: 32, checkpointInterval: 16, batchBytesMax: 1024 * 1024 },
    });
    const node = net.nodes[0];
    assert.ok(node);
    await assert.rejects(
      startValidator({ home: node.home, flags: { 'p2p.enabled': 'false' }, logDestination: sink() }),
      (e: Error) =>
        /do not fit transport\.messageBytesMax \(16777216\)/.test(e.message) &&
        /batchBytesMax <= \d+ fits/.test(e.message),
    );
    // The same chain starts on a validator whose frames are large enough.
    const running = await startValidator({
      home: node.home,
      flags: {
        'p2p.enabled': 'false',
        'api.enabled': 'false',
        'transport.listen': '127.0.0.1:0',
        'transport.messageBytesMax': String(256 * 1024 * 1024),
        'log.level': 'warn',
      },
      logDestination: sink(),
    });
    await running.stop();
  });

  it('refuses a config with an invalid value, naming the setting', async () => {
    const net = await generateTestnet({ validators: 1, outDir: dir });
    const node = net.nodes[0];
    assert.ok(node);
    await assert.rejects(
      startValidator({
        home: node.home,
        flags: { 'transport.kind': 'carrier-pigeon' },
        logDestination: sink(),
      }),
      /transport\.kind/,
    );
  });
  it("refuses to start without the network's TrInX key file, and with a TrInX key in genesis", async () => {
    const net = await generateTestnet({ validators: 1, outDir: dir });
    const node = net.nodes[0];
    assert.ok(node);
    const flags = { 'p2p.enabled': 'false' };
    const trinxPath = join(node.home, 'keys', 'trinx.key');
    const trinxKey = readFileSync(trinxPath, 'utf8');
    assert.match(trinxKey.trim(), /^[0-9a-f]{64}$/);
    assert.equal(statSync(trinxPath).mode & 0o777, 0o600, 'the TrInX key file is private');
    rmSync(trinxPath);
    await assert.rejects(
      startValidator({ home: node.home, flags, logDestination: sink() }),
      /TrInX key not found/,
    );
    writeFileSync(trinxPath, trinxKey, { mode: 0o600 });
    const genesisPath = join(node.home, 'genesis.json');
    const genesis = JSON.parse(readFileSync(genesisPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(genesisPath, JSON.stringify({ ...genesis, trinxKey: trinxKey.trim() }));
    await assert.rejects(
      startValidator({ home: node.home, flags, logDestination: sink() }),
      /trinxKey must not be in genesis/,
    );
  });
});
