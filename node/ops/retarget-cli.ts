// Command-line entry for retargetTestnet, used by scripts/netns-testnet.sh and the docker
// init service before the node's CLI grows a flag for it:
//   node dist/node/ops/retarget-cli.js --dir DIR --hosts h0,h1,h2 --transport-port 9000 \
//     --p2p-port 8000 --api-port 7000 [--api-host 0.0.0.0]

import { parseArgs } from 'node:util';
import { OpsError } from './errors.js';
import { retargetTestnet } from './retarget.js';

const usage =
  'usage: retarget-cli.js --dir DIR --hosts h0,h1,... [--transport-port P] [--p2p-port P] [--api-port P] [--api-host H]\n';

function parse() {
  try {
    return parseArgs({
      options: {
        dir: { type: 'string' },
        hosts: { type: 'string' },
        'transport-port': { type: 'string', default: '9000' },
        'p2p-port': { type: 'string', default: '8000' },
        'api-port': { type: 'string', default: '7000' },
        'api-host': { type: 'string' },
      },
      strict: true,
    });
  } catch (e) {
    process.stderr.write(`retarget: ${(e as Error).message}\n${usage}`);
    process.exit(64);
  }
}

const { values } = parse();

if (!values.dir || !values.hosts) {
  process.stderr.write(usage);
  process.exit(64);
}
try {
  const { homes } = await retargetTestnet({
    dir: values.dir,
    hosts: values.hosts.split(',').map((h) => h.trim()),
    transportPort: Number(values['transport-port']),
    p2pPort: Number(values['p2p-port']),
    apiPort: Number(values['api-port']),
    ...(values['api-host'] ? { apiHost: values['api-host'] } : {}),
  });
  process.stdout.write(`retargeted ${homes.length} validators in ${values.dir} to ${values.hosts}\n`);
} catch (e) {
  process.stderr.write(`retarget: ${e instanceof OpsError ? `${e.code}: ${e.message}` : String(e)}\n`);
  process.exit(1);
}
