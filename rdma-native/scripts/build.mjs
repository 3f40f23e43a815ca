// Builds the rdma-native addon when libfabric is present. Without libfabric the
// install must still succeed (the node falls back to TCP), except under CI,
// where the RDMA tests must run and so the addon must build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const addonDir = join(here, '..');
const inCi = Boolean(process.env.CI);

if (!existsSync(join(addonDir, 'binding.gyp'))) {
  process.exit(0);
}

const probe = spawnSync('pkg-config', ['--exists', 'libfabric'], { stdio: 'ignore' });
if (probe.status !== 0) {
  const msg =
    'rdma-native: libfabric not found, so the RDMA transport is unavailable; the node will use TCP.\n' +
    '  To enable it on Debian/Ubuntu: sudo apt-get install -y libfabric-dev pkg-config && npm run build:native';
  console.warn(msg);
  process.exit(inCi ? 1 : 0);
}

const gyp = join(addonDir, '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// Distribution-packaged Node ships its headers under <prefix>/include/node; using them
// avoids node-gyp downloading headers (which fails offline).
const prefix = join(dirname(process.execPath), '..');
const localHeaders = existsSync(join(prefix, 'include', 'node', 'node_api.h'));
const gypArgs = [gyp, 'rebuild', '--directory', addonDir, ...(localHeaders ? [`--nodedir=${prefix}`] : [])];
const res = spawnSync(process.execPath, gypArgs, { stdio: 'inherit' });
if (res.status !== 0) {
  console.warn(
    'rdma-native: the addon failed to build; the RDMA transport is unavailable, the node will use TCP.',
  );
  process.exit(inCi ? 1 : 0);
}
