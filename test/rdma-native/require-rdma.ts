// RDMA tests skip where the addon is not built, except under CI, where a missing addon
// is a failure (the addon must build there).
import { rdmaAvailable } from '../../rdma-native/native.js';

export function requireRdma(ctx: Mocha.Context): void {
  const available = rdmaAvailable();
  if (available.ok) return;
  if (process.env.CI) throw new Error(`RDMA transport unavailable under CI: ${available.reason}`);
  ctx.skip();
}
