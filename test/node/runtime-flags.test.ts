import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../api/static.js';
import { VALIDATOR_V8_FLAGS } from '../../node/runtime-flags.js';
import { startTestnet } from '../helpers/testnet.js';

describe('node/runtime-flags: every way a validator starts runs it with the validator V8 flags', function () {
  this.timeout(60_000);

  it('the hybster command (its shebang) and the Docker image carry the same flags', () => {
    const root = repoRoot();
    const shebang = readFileSync(join(root, 'node', 'cli.ts'), 'utf8').split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S node ${VALIDATOR_V8_FLAGS.join(' ')}`);
    const dockerfile = readFileSync(join(root, 'docker', 'Dockerfile'), 'utf8');
    assert.ok(
      dockerfile.split('\n').includes(`ENV NODE_OPTIONS=${VALIDATOR_V8_FLAGS.join(' ')}`),
      'the Dockerfile sets NODE_OPTIONS to the validator flags',
    );
  });

  it('a testnet validator process runs with them', async () => {
    const net = await startTestnet({ validators: 3, transport: 'tcp' });
    try {
      const pid = net.validators[0]?.process?.pid;
      assert.ok(pid !== undefined);
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of VALIDATOR_V8_FLAGS)
        assert.ok(argv.includes(flag), `${flag} missing from ${argv.join(' ')}`);
    } finally {
      await net.stop();
    }
  });
});
