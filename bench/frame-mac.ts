// `npm run bench -- frame-mac`: the replica channel's per-frame MAC (node/transport/frame-mac.ts)
// against createHmac per frame, the code it replaced, for frame sizes a replica sends: a
// COMMIT or block signature (~50-160 bytes), a gossip message (~600 bytes to 1.5 KB) and a
// PREPARE of a batch at saturation (~23 KB). Both compute the same HMAC-SHA256; rounds
// alternate between them and the medians are compared as a ratio measured in one run.
import crypto from 'node:crypto';
import { FrameMac } from '../node/transport/frame-mac.js';
import { machineInfo, writeResult } from './_results.js';
import { median } from './_stats.js';

const SIZES = [48, 160, 600, 1500, 23_000];

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const key = crypto.createSecretKey(crypto.randomBytes(32));
  const direction = Buffer.of(1);
  const createHmacPerFrame = (b: Uint8Array) =>
    crypto.createHmac('sha256', key).update(direction).update(b).digest();
  const mac = new FrameMac(key, direction);
  const frameMac = (b: Uint8Array) => mac.tag(b);
  const rounds = opts.quick ? 5 : 11;
  const rows = SIZES.map((size) => {
    const body = crypto.randomBytes(size);
    if (!frameMac(body).equals(createHmacPerFrame(body)))
      throw new Error('FrameMac disagrees with createHmac');
    const n = Math.max(200, Math.floor((opts.quick ? 2e6 : 8e6) / (size + 400)));
    const us: Record<'createHmac' | 'frameMac', number[]> = { createHmac: [], frameMac: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, f] of [
        ['createHmac', createHmacPerFrame],
        ['frameMac', frameMac],
      ] as const) {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) f(body);
        us[name].push(((performance.now() - t0) * 1000) / n);
      }
    }
    const old = median(us.createHmac);
    const now = median(us.frameMac);
    return {
      frameBytes: size,
      createHmacUs: Math.round(old * 100) / 100,
      frameMacUs: Math.round(now * 100) / 100,
      ratio: Math.round((now / old) * 100) / 100,
    };
  });
  console.log('frame bytes  createHmac us  FrameMac us  ratio');
  for (const r of rows) {
    console.log(
      `${String(r.frameBytes).padStart(11)}  ${r.createHmacUs.toFixed(2).padStart(13)}  ${r.frameMacUs.toFixed(2).padStart(11)}  ${r.ratio.toFixed(2).padStart(5)}`,
    );
  }
  const out = {
    name: 'frame-mac',
    quick: opts.quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    rounds,
    results: rows,
  };
  writeResult('frame-mac', out);
  return out;
}
