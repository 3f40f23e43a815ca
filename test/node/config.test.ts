import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CERT_REPAIR_DEFAULTS } from '../../node/cert-repair.js';
import { ConfigError, envName, flagName, loadConfig, SETTINGS } from '../../node/config.js';

describe('node/config', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'hybster-config-'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const write = (o: unknown): void => writeFileSync(join(home, 'config.json'), JSON.stringify(o));

  it('fills defaults for everything the file leaves out', () => {
    write({});
    const { config } = loadConfig({ home, env: {} });
    assert.equal(config.transport.kind, 'tcp');
    assert.equal(config.api.port, 7000);
    assert.equal(config.mempool.txCountMax, 100_000);
    assert.equal(config.dataDir, 'data');
  });

  it('lets the environment override the file and flags override the environment', () => {
    write({ api: { port: 7100 }, log: { level: 'warn' } });
    const env = { HYBSTER_API_PORT: '7200', HYBSTER_LOG_LEVEL: 'debug' };
    const a = loadConfig({ home, env });
    assert.equal(a.config.api.port, 7200);
    assert.equal(a.sources['api.port'], 'env');
    const b = loadConfig({ home, env, flags: { 'api.port': '7300' } });
    assert.equal(b.config.api.port, 7300);
    assert.equal(b.config.log.level, 'debug');
    assert.equal(b.sources['api.port'], 'flag');
  });

  it('names the setting and its source when a value is invalid', () => {
    write({ transport: { kind: 'udp' } });
    assert.throws(
      () => loadConfig({ home, env: {} }),
      (e: unknown) =>
        e instanceof ConfigError && /transport\.kind/.test(e.message) && /config\.json/.test(e.message),
    );
    write({});
    assert.throws(
      () => loadConfig({ home, env: { HYBSTER_API_PORT: 'seven' } }),
      (e: unknown) => e instanceof ConfigError && /HYBSTER_API_PORT/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ home, env: {}, flags: { 'api.port': '70000' } }),
      (e: unknown) => e instanceof ConfigError && /--api-port/.test(e.message),
    );
  });

  it('bounds certificate repair by default and takes its bounds from the environment or flags', () => {
    write({});
    const d = loadConfig({ home, env: {} }).config.certRepair;
    assert.equal(d.scanPerTickMax, CERT_REPAIR_DEFAULTS.scanPerTickMax);
    assert.equal(d.missingMax, CERT_REPAIR_DEFAULTS.missingMax);
    assert.equal(d.attemptsMax, 8);
    assert.equal(d.servedRequestsPerSecMax, 10);
    assert.equal(d.servedHeightsPerSecMax, 320);
    const c = loadConfig({
      home,
      env: { HYBSTER_CERT_REPAIR_ATTEMPTS_MAX: '3' },
      flags: { 'certRepair.servedHeightsPerSecMax': '64' },
    }).config.certRepair;
    assert.equal(c.attemptsMax, 3);
    assert.equal(c.servedHeightsPerSecMax, 64);
    assert.throws(
      () => loadConfig({ home, env: { HYBSTER_CERT_REPAIR_HEIGHTS_PER_REQUEST_MAX: '129' } }),
      (e: unknown) => e instanceof ConfigError && /HEIGHTS_PER_REQUEST_MAX/.test(e.message),
      'more heights per request than a certs-request carries',
    );
  });

  it('refuses unknown keys inside known sections (likely typos)', () => {
    write({ api: { prot: 7000 } });
    assert.throws(() => loadConfig({ home, env: {} }), ConfigError);
  });

  it('reports a missing or non-JSON config file clearly', () => {
    assert.throws(() => loadConfig({ home, env: {} }), /not found/);
    writeFileSync(join(home, 'config.json'), '{ nope');
    assert.throws(() => loadConfig({ home, env: {} }), /not JSON/);
  });

  it('parses list and boolean settings from the environment', () => {
    write({});
    const { config } = loadConfig({
      home,
      env: {
        HYBSTER_P2P_BOOTSTRAP: '/ip4/127.0.0.1/tcp/1/p2p/a, /ip4/127.0.0.1/tcp/2/p2p/b',
        HYBSTER_P2P_MDNS: 'false',
      },
    });
    assert.deepEqual(config.p2p.bootstrap, ['/ip4/127.0.0.1/tcp/1/p2p/a', '/ip4/127.0.0.1/tcp/2/p2p/b']);
    assert.equal(config.p2p.mdns, false);
  });

  it('derives env and flag names from setting paths, one per setting', () => {
    assert.equal(envName('transport.messageBytesMax'), 'HYBSTER_TRANSPORT_MESSAGE_BYTES_MAX');
    assert.equal(flagName('transport.messageBytesMax'), 'transport-message-bytes-max');
    const envs = new Set(SETTINGS.map((s) => envName(s.path)));
    assert.equal(envs.size, SETTINGS.length);
  });
});
