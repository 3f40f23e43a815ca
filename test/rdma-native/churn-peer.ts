// A transport in its own process that listens, dials its peers again whenever a
// connection ends (like node/replicas' dialer, with a short fixed delay) and keeps traffic
// flowing both ways: small messages (injects) and large ones (posted writes with
// completions). Forked by peer-churn.test.ts with one JSON argument; reports on IPC.
import type { TransportConnection } from '../../node/transport/types.js';
import { type CompletionMode, type DataPath, RdmaTransport } from '../../rdma-native/transport.js';

export interface ChurnConfig {
  /** Port to listen on (0: ephemeral; a restarted peer passes its first incarnation's port). */
  port: number;
  dial: string[];
  completion: CompletionMode;
  dataPath: DataPath;
  /** Blocks the event loop this long every few ms, as a busy node does (0: never). */
  busyMs?: number;
  /** Closes every connection locally this often while the peer is still writing (0: never). */
  closeEveryMs?: number;
}

export type ChurnReport =
  | { type: 'listening'; endpoint: string; completion: CompletionMode; dataPath: DataPath }
  | { type: 'stats'; received: number; connections: number; dialed: number; closed: boolean };

export type ChurnCommand = { type: 'stats' } | { type: 'dial'; endpoint: string } | { type: 'close' };

// One of each path through ofi_rxm: injects straight onto the socket (<= 64 B), injects
// it emulates with a buffer (<= 4 KiB), and posted operations with completions.
const SIZES = [48, 300, 1_000, 120, 3_000, 600, 24 * 1024, 2_000, 200, 200 * 1024];
const PAYLOADS = SIZES.map((n, i) => Buffer.alloc(n, i + 1));
const REDIAL_MS = 20;

function report(r: ChurnReport): void {
  process.send?.(r);
}

async function main(cfg: ChurnConfig): Promise<void> {
  const t = new RdmaTransport({
    provider: 'tcp;ofi_rxm',
    dataPath: cfg.dataPath,
    completion: cfg.completion,
    heartbeatMs: 100,
    peerTimeoutMs: 600,
    connectTimeoutMs: 400,
    limits: { ringBytes: 256 * 1024, recvSlots: 32, recvSlotBytes: 32 * 1024, msgCredits: 8 },
  });
  let received = 0;
  let dialed = 0;
  let closing = false;
  const live = new Set<TransportConnection>();

  // Keeps messages flowing on `conn` for as long as it lives, one chunk each (a microtask
  // between sends, so the transport does not coalesce them), like a node's votes.
  const flow = (conn: TransportConnection): void => {
    live.add(conn);
    let n = 0;
    const tick = setInterval(async () => {
      for (let i = 0; i < 6 && live.has(conn); i++) {
        try {
          conn.send(PAYLOADS[n++ % PAYLOADS.length]!);
        } catch {
          return; // closed meanwhile (a BYE, a lost peer)
        }
        await null;
      }
    }, 1);
    conn.onMessages((batch) => {
      received += batch.length;
    });
    conn.onClose(() => {
      clearInterval(tick);
      live.delete(conn);
    });
  };

  t.onConnection(flow);
  if (cfg.closeEveryMs) {
    setInterval(() => {
      for (const c of [...live]) void c.close();
    }, cfg.closeEveryMs).unref();
  }
  if (cfg.busyMs) {
    const busy = cfg.busyMs;
    setInterval(() => {
      const until = performance.now() + busy;
      while (performance.now() < until) {
        // The event loop is blocked: completions pile up in the provider meanwhile.
      }
    }, 5).unref();
  }
  const endpoint = await t.listen(`rdma+tcp;ofi_rxm://127.0.0.1:${cfg.port}`);

  const dial = async (target: string): Promise<void> => {
    while (!closing) {
      try {
        const conn = await t.connect(target);
        dialed++;
        flow(conn);
        await new Promise<void>((resolve) => conn.onClose(() => resolve()));
      } catch {
        // The peer is down or restarting: try again shortly.
      }
      await new Promise((r) => setTimeout(r, REDIAL_MS));
    }
  };
  for (const d of cfg.dial) void dial(d);

  process.on('message', (m: ChurnCommand) => {
    if (m.type === 'dial') {
      void dial(m.endpoint);
    } else if (m.type === 'stats') {
      report({ type: 'stats', received, connections: t.connectionCount, dialed, closed: closing });
    } else if (m.type === 'close') {
      closing = true;
      void t.close().then(() => {
        report({ type: 'stats', received, connections: t.connectionCount, dialed, closed: true });
        process.disconnect?.();
      });
    }
  });
  report({ type: 'listening', endpoint, completion: t.completion, dataPath: t.dataPath });
}

main(JSON.parse(process.argv[2] ?? '{}') as ChurnConfig).catch((e: Error) => {
  process.stderr.write(`churn peer: ${e.stack ?? e.message}\n`);
  process.exit(2);
});
