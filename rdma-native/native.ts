// Loads the compiled addon (rdma-native/build/Release/rdma_native.node) and types
// its surface. The addon is optional: without libfabric `npm install` skips the
// build, `rdmaAvailable()` says why, and the node falls back to TCP.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Successful send/write completions are not events: the addon counts them
// (stats().completedOps) instead of waking JS for each message sent.
export const EVENT_RECV = 2;
export const EVENT_REMOTE_DATA = 3;
export const EVENT_ERROR = 4;

/** One completion, as the addon reports it. `src` is the sender's AV address (-1: unknown). */
export interface NativeEvent {
  kind: number;
  src: number;
  ctx: number;
  data?: Buffer;
  cqData?: bigint;
  len?: number;
  err?: number;
  message?: string;
}

export interface NativeFabricOptions {
  provider: string;
  /** Local bind address and port ("0": ephemeral); empty for providers without one (shm). */
  node?: string;
  service?: string;
  /** CQ with a wait object, so the progress thread sleeps in fi_cq_sread instead of spinning. */
  waitable?: boolean;
  /** A wait object the event loop can watch (for watch()); implies waitable. */
  waitFd?: boolean;
  /** Progress thread: keep reading the CQ this long after a completion before sleeping. */
  spinUs?: number;
  /** shm: bind a doorbell peers ring after posting, and ring theirs (default true). */
  doorbell?: boolean;
  recvSlots?: number;
  recvSlotBytes?: number;
  cqSize?: number;
}

export interface NativeRing {
  id: number;
  /** Base address the peer targets (0 when the provider addresses MRs by offset). */
  addr: bigint;
  key: bigint;
}

export interface NativeFabric {
  info(): { provider: string; virtAddr: boolean; waitable: boolean; injectBytes: number; name: Buffer };
  avInsert(name: Buffer): number;
  avRemove(addr: number): void;
  openRing(bytes: number): NativeRing;
  closeRing(id: number): boolean;
  /** Copies bytes out of a ring; null when out of bounds or the ring is closed. */
  copyOut(id: number, offset: number, len: number): Buffer | null;
  /** 0, or a negative libfabric errno (EAGAIN: retry after progress). */
  send(dest: number, buf: Uint8Array, ctx: number): number;
  writeData(dest: number, buf: Uint8Array, raddr: bigint, key: bigint, cqData: bigint, ctx: number): number;
  /** Busy-poll mode: drains completions on the calling thread. */
  poll(): NativeEvent[];
  /** Progress-thread mode: `cb` gets each batch on the JS thread. */
  start(cb: (events: NativeEvent[]) => void): void;
  /** Event-loop mode: libuv watches the CQ's wait fd; false when the provider has none. */
  watch(cb: (events: NativeEvent[]) => void): boolean;
  /** Pauses (false) or resumes (true) the fd watch; busy-poll pauses it while spinning. */
  arm(on: boolean): void;
  close(): void;
  stats(): NativeFabricStats;
}

export interface NativeFabricStats {
  closed: boolean;
  /** Sends and writes posted and not yet completed. */
  outstandingOps: number;
  /** Sends and writes completed successfully since the fabric opened. */
  completedOps: number;
  openRings: number;
  progressThread: boolean;
  /** Event-loop mode: the CQ's wait fd is watched. */
  watching: boolean;
  /** Event-loop mode wake-ups: by the fd, by the progress timer, and those with nothing for JS. */
  fdWakes: number;
  timerWakes: number;
  emptyWakes: number;
  /** Progress-thread mode: reads of the CQ, and naps between them (providers whose wait spins: shm). */
  progressWakes: number;
  progressNaps: number;
  /** shm: this endpoint has a doorbell, peers rang it (naps it cut short), rings this endpoint sent. */
  doorbell: boolean;
  bellWakes: number;
  ringsSent: number;
}

export interface NativeAddon {
  Fabric: new (opts: NativeFabricOptions) => NativeFabric;
  EAGAIN: number;
}

export type RdmaAvailability = { ok: true } | { ok: false; reason: string };

const INSTALL_HINT =
  'install libfabric (Debian/Ubuntu: apt-get install -y libfabric-dev pkg-config) and run `npm run build:native`';

function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'rdma-native'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

let loaded: { addon: NativeAddon } | { error: string } | undefined;

function load(): { addon: NativeAddon } | { error: string } {
  if (loaded) return loaded;
  const root = repoRoot();
  const path = root ? join(root, 'rdma-native', 'build', 'Release', 'rdma_native.node') : undefined;
  if (!path || !existsSync(path)) {
    loaded = {
      error: `the rdma-native addon is not built (${path ?? 'repo root not found'}); ${INSTALL_HINT}`,
    };
    return loaded;
  }
  try {
    const require = createRequire(import.meta.url);
    loaded = { addon: require(path) as NativeAddon };
  } catch (e) {
    loaded = { error: `the rdma-native addon failed to load: ${(e as Error).message}; ${INSTALL_HINT}` };
  }
  return loaded;
}

/** Whether the RDMA transport can run here; the reason says how to fix it when not. */
export function rdmaAvailable(): RdmaAvailability {
  const l = load();
  return 'addon' in l ? { ok: true } : { ok: false, reason: l.error };
}

/** The addon, or throws with the reason it is unavailable. */
export function nativeAddon(): NativeAddon {
  const l = load();
  if ('error' in l) throw new Error(l.error);
  return l.addon;
}
