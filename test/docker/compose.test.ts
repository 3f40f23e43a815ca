// The docker files cannot be run here (no Docker engine on the build machines), so this
// checks what can go wrong without one: the compose file parses and its services,
// image, volumes, ports and health checks agree with each other, with the Dockerfile,
// with the node's settings and API routes, and with the CLI commands and flags the
// scripts call (asked from the built CLI itself). The init script and the entrypoint's
// transport decision run for real against the built CLI.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { routes } from '../../api/routes.js';
import { envName, SETTINGS } from '../../node/config.js';
import { writeTestnet } from '../../node/home.js';

const here = dirname(fileURLToPath(import.meta.url));
/** <build>/test/docker -> <build> (holds node/cli.js, node/ops/retarget-cli.js). */
const BUILD = join(here, '..', '..');
const CLI = join(BUILD, 'node', 'cli.js');

function repoRoot(): string {
  let dir = here;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above the test');
    dir = up;
  }
  return dir;
}
const ROOT = repoRoot();
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${what} must be a mapping`);
  return v as Obj;
};

const compose = obj(parse(read('docker/docker-compose.yml'), { merge: true }), 'compose file');
const services = obj(compose['services'], 'services');
const validatorNames = Object.keys(services).filter((n) => /^validator\d+$/.test(n));
const env = (svc: string): Record<string, string> => {
  const e = obj(services[svc], svc)['environment'];
  return Object.fromEntries(Object.entries(obj(e, `${svc}.environment`)).map(([k, v]) => [k, String(v)]));
};

/** Dockerfile instructions with line continuations joined. */
const dockerfile = read('docker/Dockerfile')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l.length > 0 && !l.startsWith('#'));
const stages: string[][] = [];
for (const line of dockerfile) {
  if (/^FROM\s/i.test(line)) stages.push([]);
  stages.at(-1)?.push(line);
}

/** The entrypoint's own variables; every other HYBSTER_* name must be a node setting. */
const ENTRYPOINT_VARS = new Set([
  'HYBSTER_HOME',
  'HYBSTER_RXE_NETDEV',
  'HYBSTER_FORCE_TCP',
  'HYBSTER_DIST',
  'HYBSTER_ENTRYPOINT_DRY_RUN',
]);
const SETTING_VARS = new Set(SETTINGS.map((s) => envName(s.path)));

/** `node "$CLI" <command> --flag ...` invocations in a shell script (continuations joined). */
function cliCalls(script: string): Array<{ command: string; flags: string[] }> {
  const text = read(script).replace(/\\\n/g, ' ');
  const calls: Array<{ command: string; flags: string[] }> = [];
  for (const line of text.split('\n')) {
    const m = /"\$(?:NODE|\{?NODE\}?)?"?\s*"\$CLI"\s+([a-z-]+)(.*)$|node\s+"\$CLI"\s+([a-z-]+)(.*)$/.exec(
      line,
    );
    if (!m) continue;
    const command = (m[1] ?? m[3])!;
    const rest = m[2] ?? m[4] ?? '';
    calls.push({ command, flags: [...rest.matchAll(/(?:^|\s|\+)(--[a-z][a-z0-9-]*)/g)].map((x) => x[1]!) });
  }
  return calls;
}

const helpCache = new Map<string, Set<string>>();
function cliFlags(command: string): Set<string> {
  const cached = helpCache.get(command);
  if (cached) return cached;
  const r = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `hybster ${command} --help failed: ${r.stderr}`);
  const flags = new Set([...r.stdout.matchAll(/--[a-z][a-z0-9-]*/g)].map((m) => m[0]));
  helpCache.set(command, flags);
  return flags;
}

describe('docker testnet files', () => {
  it('declare an init service and validator0..validator<n-1> with n odd and equal to VALIDATORS', () => {
    assert.ok(services['init'], 'init service');
    const n = Number(env('init')['VALIDATORS']);
    assert.ok(Number.isInteger(n) && n % 2 === 1, `VALIDATORS=${n} must be odd (n = 2f+1)`);
    assert.deepEqual(
      validatorNames.sort(),
      Array.from({ length: n }, (_, i) => `validator${i}`).sort(),
      'one validator service per validator, numbered from 0',
    );
  });

  it('build one image and use it for every service', () => {
    for (const [name, raw] of Object.entries(services)) {
      const s = obj(raw, name);
      assert.equal(s['image'], 'hybster:local', `${name}.image`);
      const build = obj(s['build'], `${name}.build`);
      const dockerfilePath = join(ROOT, 'docker', String(build['context']), String(build['dockerfile']));
      assert.ok(existsSync(dockerfilePath), `${name}.build points at ${dockerfilePath}`);
    }
  });

  it('mount only declared volumes, the testnet volume at the init service’s TESTNET_DIR', () => {
    const declared = new Set(Object.keys(obj(compose['volumes'], 'volumes')));
    const dir = env('init')['TESTNET_DIR'] ?? '/testnet';
    for (const [name, raw] of Object.entries(services)) {
      const vols = obj(raw, name)['volumes'];
      assert.ok(Array.isArray(vols), `${name}.volumes`);
      for (const v of vols) {
        const [src, dst] = String(v).split(':');
        assert.ok(declared.has(src!), `${name} mounts undeclared volume ${src}`);
        assert.equal(dst, dir, `${name} mounts the testnet volume at ${dir}`);
      }
    }
  });

  it('give each validator its own home, host name, host port and a health check on the API port', () => {
    const dir = env('init')['TESTNET_DIR'] ?? '/testnet';
    const hostPorts = new Set<string>();
    assert.equal(routes.getHealth.url, '/v1/health');
    for (const name of validatorNames) {
      const s = obj(services[name], name);
      const e = env(name);
      assert.equal(e['HYBSTER_HOME'], `${dir}/${name}`, `${name} home matches the generated layout`);
      assert.equal(s['hostname'], name, `${name}.hostname is the name genesis uses`);
      assert.equal(s['privileged'], true, `${name} must be privileged to create rxe0`);
      const deps = obj(s['depends_on'], `${name}.depends_on`);
      assert.equal(obj(deps['init'], 'init dep')['condition'], 'service_completed_successfully');
      const apiPort = e['HYBSTER_API_PORT'];
      assert.ok(apiPort, `${name} sets HYBSTER_API_PORT`);
      const ports = s['ports'] as unknown[];
      assert.equal(ports.length, 1);
      const [host, hostPort, containerPort] = String(ports[0]).split(':');
      assert.equal(host, '127.0.0.1', 'published on loopback only');
      assert.equal(containerPort, apiPort, `${name} publishes its API port`);
      assert.ok(!hostPorts.has(hostPort!), `host port ${hostPort} used twice`);
      hostPorts.add(hostPort!);
      const hc = obj(s['healthcheck'], `${name}.healthcheck`);
      const test = (hc['test'] as unknown[]).join(' ');
      assert.match(
        test,
        new RegExp(`127\\.0\\.0\\.1:${apiPort}${routes.getHealth.url}`),
        `${name} health check`,
      );
    }
  });

  it('set only HYBSTER_* variables that are node settings or the entrypoint’s own', () => {
    const used = new Set<string>();
    for (const name of Object.keys(services)) for (const k of Object.keys(env(name))) used.add(k);
    for (const m of read('docker/entrypoint.sh').matchAll(/\b(HYBSTER_[A-Z_]+)/g)) used.add(m[1]!);
    for (const m of read('scripts/netns-testnet.sh').matchAll(/\b(HYBSTER_[A-Z_]+)/g)) used.add(m[1]!);
    used.delete('HYBSTER_CLI'); // the netns script's own
    for (const v of used) {
      if (!v.startsWith('HYBSTER_')) continue;
      assert.ok(
        SETTING_VARS.has(v) || ENTRYPOINT_VARS.has(v),
        `${v} is neither a node setting nor an entrypoint variable`,
      );
    }
  });

  it('build with libfabric-dev and rdma-core and run on a slim image with the runtime libraries', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const [build, run] = [stages[0]!, stages.at(-1)!];
    assert.match(build[0]!, /\sAS\s+build$/i);
    assert.match(run[0]!, /-slim\b/);
    const runs = (stage: string[]) => stage.filter((l) => l.startsWith('RUN')).join(' ');
    for (const p of ['libfabric-dev', 'rdma-core']) assert.match(runs(build), new RegExp(`\\b${p}\\b`));
    for (const p of ['libfabric1', 'rdma-core', 'ibverbs-providers', 'iproute2']) {
      assert.match(runs(run), new RegExp(`\\b${p}\\b`));
    }
    assert.ok(run.some((l) => l.startsWith('HEALTHCHECK') && l.includes(routes.getHealth.url)));
  });

  it('copy only files that exist, and the scripts compose runs are in the image', () => {
    const ignored = new Set(
      read('.dockerignore')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#')),
    );
    const inImage = new Set<string>();
    for (const l of dockerfile.filter((x) => x.startsWith('COPY') && !x.includes('--from'))) {
      const parts = l.split(/\s+/).slice(1);
      const dest = parts.pop()!;
      for (const src of parts) {
        if (src === '.') continue;
        assert.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists`);
        assert.ok(!ignored.has(src), `COPY source ${src} is not in .dockerignore`);
        if (dest.endsWith('/')) inImage.add(dest + src.split('/').pop());
      }
    }
    const entry = dockerfile.find((l) => l.startsWith('ENTRYPOINT'));
    assert.ok(entry);
    const entryPath = (JSON.parse(entry.slice('ENTRYPOINT'.length)) as string[])[0]!;
    assert.ok(inImage.has(entryPath), `${entryPath} is copied into the image`);
    const initEntry = (obj(services['init'], 'init')['entrypoint'] as string[])[0]!;
    assert.ok(inImage.has(initEntry), `${initEntry} is copied into the image`);
  });

  it('contain shell scripts that parse', () => {
    for (const [shell, file] of [
      ['sh', 'docker/entrypoint.sh'],
      ['sh', 'docker/init-testnet.sh'],
      ['bash', 'scripts/netns-testnet.sh'],
      ['bash', 'scripts/netns-testnet-teardown.sh'],
    ] as const) {
      const r = spawnSync(shell, ['-n', join(ROOT, file)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${file}: ${r.stderr}`);
    }
  });

  it('call only CLI commands and flags the built CLI has', function () {
    this.timeout(60_000);
    const calls = [
      ...cliCalls('docker/entrypoint.sh'),
      ...cliCalls('docker/init-testnet.sh'),
      ...cliCalls('scripts/netns-testnet.sh'),
    ];
    assert.ok(
      calls.some((c) => c.command === 'start') && calls.some((c) => c.command === 'testnet'),
      'found the calls',
    );
    for (const c of calls) {
      const known = cliFlags(c.command);
      for (const f of c.flags) assert.ok(known.has(f), `hybster ${c.command} has no ${f}`);
    }
  });

  it('pass only flags the retarget tool accepts', () => {
    const text = read('docker/init-testnet.sh').replace(/\\\n/g, ' ');
    const line = text.split('\n').find((l) => l.includes('retarget-cli.js'));
    assert.ok(line);
    const flags = [...line.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
    const args = flags.flatMap((f) => [f, f === '--dir' ? '/nonexistent-hyb' : f === '--hosts' ? 'h0' : '1']);
    const r = spawnSync(process.execPath, [join(BUILD, 'node', 'ops', 'retarget-cli.js'), ...args], {
      encoding: 'utf8',
    });
    assert.match(r.stderr, /bad-home/, `flags accepted, failing only on the missing dir: ${r.stderr}`);
  });

  it('generate a testnet addressed by service name when the init script runs', function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'hyb-docker-init-'));
    try {
      const n = Number(env('init')['VALIDATORS']);
      const r = spawnSync('sh', [join(ROOT, 'docker/init-testnet.sh')], {
        env: { ...process.env, VALIDATORS: String(n), TESTNET_DIR: dir, HYBSTER_DIST: BUILD },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      const genesis = JSON.parse(readFileSync(join(dir, 'validator0', 'genesis.json'), 'utf8')) as {
        validators: Array<{ endpoints: Record<string, string | string[]> }>;
      };
      assert.equal(genesis.validators.length, n);
      genesis.validators.forEach((v, i) => {
        for (const [kind, ep] of Object.entries(v.endpoints)) {
          if (Array.isArray(ep))
            for (const a of ep) assert.match(a, new RegExp(`^/dns4/validator${i}/tcp/8000(/|$)`));
          else assert.match(ep, new RegExp(`validator${i}:9000$`), `${kind} endpoint of validator ${i}`);
        }
      });
      for (let i = 0; i < n; i++) {
        assert.equal(
          readFileSync(join(dir, `validator${i}`, 'genesis.json'), 'utf8'),
          readFileSync(join(dir, 'validator0', 'genesis.json'), 'utf8'),
        );
        const cfg = JSON.parse(readFileSync(join(dir, `validator${i}`, 'config.json'), 'utf8')) as {
          api: { host: string; port: number };
          transport: { listen: string };
          p2p: { listen: string; bootstrap?: string[] };
        };
        assert.deepEqual(cfg.api, { host: '0.0.0.0', port: 7000 });
        assert.match(cfg.transport.listen, new RegExp(`validator${i}:9000$`));
        assert.equal(cfg.p2p.listen, '/ip4/0.0.0.0/tcp/8000');
        for (const b of cfg.p2p.bootstrap ?? []) assert.match(b, /^\/dns4\/validator\d+\/tcp\/8000\/p2p\//);
      }
      // Re-running keeps the keys.
      const key = readFileSync(join(dir, 'validator0', 'keys', 'validator.key'));
      const again = spawnSync('sh', [join(ROOT, 'docker/init-testnet.sh')], {
        env: { ...process.env, VALIDATORS: String(n), TESTNET_DIR: dir, HYBSTER_DIST: BUILD },
        encoding: 'utf8',
      });
      assert.equal(again.status, 0);
      assert.deepEqual(readFileSync(join(dir, 'validator0', 'keys', 'validator.key')), key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back to tcp;ofi_rxm and says why when soft-RoCE cannot be set up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hyb-docker-entry-'));
    try {
      const home = join(dir, 'validator0');
      await writeTestnet({
        outDir: dir,
        validators: 1,
        transport: 'rdma',
        provider: 'tcp;ofi_rxm',
        pillars: 1,
        apiPorts: [7000],
        basePort: 0,
        chainId: 'docker-entrypoint-test',
        accounts: 0,
      });
      const r = spawnSync('sh', [join(ROOT, 'docker/entrypoint.sh')], {
        env: {
          ...process.env,
          HYBSTER_HOME: home,
          HYBSTER_DIST: BUILD,
          HYBSTER_ENTRYPOINT_DRY_RUN: '1',
          HYBSTER_FORCE_TCP: '1',
        },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /soft-RoCE unavailable: HYBSTER_FORCE_TCP=1/);
      assert.match(r.stderr, /falling back to libfabric provider tcp;ofi_rxm/);
      assert.match(r.stdout, /^HYBSTER_TRANSPORT_PROVIDER=tcp;ofi_rxm$/m);
      assert.match(
        r.stdout,
        new RegExp(
          `exec node ${BUILD.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/node/cli.js start --home ${home}`,
        ),
      );
      // Without the kernel module, the reason names it (this machine has no rdma_rxe loaded).
      if (!existsSync('/sys/module/rdma_rxe')) {
        const r2 = spawnSync('sh', [join(ROOT, 'docker/entrypoint.sh')], {
          env: { ...process.env, HYBSTER_HOME: home, HYBSTER_DIST: BUILD, HYBSTER_ENTRYPOINT_DRY_RUN: '1' },
          encoding: 'utf8',
        });
        assert.match(r2.stderr, /no rdma_rxe module loaded/);
      }
      const bad = spawnSync('sh', [join(ROOT, 'docker/entrypoint.sh')], {
        env: { ...process.env, HYBSTER_HOME: join(dir, 'nope'), HYBSTER_ENTRYPOINT_DRY_RUN: '1' },
        encoding: 'utf8',
      });
      assert.equal(bad.status, 64, 'a missing home is refused');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // `docker compose` (v2 plugin) where present, else Debian's `docker-compose` (v1), which
  // .ci/run installs: both validate the file without a Docker engine.
  const composeV2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
  const composeV1 = !composeV2 && spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
  const composeTitle = 'is accepted by `docker compose config`';
  if (composeV2 || composeV1 || process.env.CI) {
    it(composeTitle, () => {
      assert.ok(composeV2 || composeV1, 'no docker compose CLI: .ci/run installs docker-compose');
      const file = join(ROOT, 'docker/docker-compose.yml');
      const r = composeV2
        ? spawnSync('docker', ['compose', '-f', file, 'config', '-q'], { encoding: 'utf8' })
        : spawnSync('docker-compose', ['-f', file, 'config', '-q'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });
  } else {
    // Outside CI a developer machine may lack Compose; the structural checks above stand in.
    it.skip(`${composeTitle} (no docker compose CLI here)`);
  }
});
