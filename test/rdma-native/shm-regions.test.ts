// shm endpoints get process-unique names, and the /dev/shm regions that SIGKILLed owners
// leave behind are swept by the next process that opens an shm endpoint.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { requireRdma } from './require-rdma.js';

const transportUrl = new URL('../../rdma-native/transport.js', import.meta.url).href;

describe('rdma-native shm regions', () => {
  before(function () {
    requireRdma(this);
  });

  it('sweeps the region of a dead owner and leaves a live owner alone', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    const deadRegion = `/dev/shm/hyb-${dead}-0123456789ab:0:0`;
    const liveRegion = `/dev/shm/hyb-${process.pid}-0123456789ab:0:0`;
    writeFileSync(deadRegion, '');
    writeFileSync(liveRegion, '');
    try {
      const script = `
        const { RdmaTransport } = await import(${JSON.stringify(transportUrl)});
        const t = new RdmaTransport({ provider: 'shm', completion: 'thread' });
        const ep = await t.listen('rdma+shm://');
        await t.close();
        console.log(ep);`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe' });
      let out = '';
      child.stdout.on('data', (d) => {
        out += String(d);
      });
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      assert.equal(code, 0, out);
      assert.match(out, /^rdma\+shm:\/\//, 'the child listened on shm');
      assert.equal(existsSync(deadRegion), false, "a dead owner's region is removed");
      assert.equal(existsSync(liveRegion), true, "a live owner's region is kept");
    } finally {
      spawnSync('rm', ['-f', deadRegion, liveRegion]);
    }
  });
});
