// What this machine allows a commit's latency to be, whatever the node does: measured in
// the same run as bench/network.ts's latency phases, so the low-load goal can be read
// against it.
//
// A commit waits for three synced writes in sequence (the leader's PREPARE state, a
// follower's state before its COMMIT, the block; docs/node.md says why each is needed)
// and for at least two messages between processes (PREPARE to a follower, COMMIT back).
// So no implementation on this machine commits faster than
//   3 x (synced LevelDB write p50) + 2 x (one-way loopback message p50 between processes).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { median } from './_stats.js';

export interface LatencyFloor {
  /** p50 of a synced 64-byte LevelDB put in the temp directory the testnet uses. */
  syncedWriteP50Ms: number;
  /**
   * p50 of half a round trip of a 64-byte message to another process over loopback TCP,
   * messages 10 ms apart (both sides idle in between, as at low load).
   */
  hopP50Ms: number;
  syncedWritesPerCommit: number;
  hopsPerCommit: number;
  /** The lower bound above. */
  commitP50FloorMs: number;
}

const SYNCED_WRITES_PER_COMMIT = 3;
const HOPS_PER_COMMIT = 2;
const HOP_GAP_MS = 10;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function syncedWriteP50Ms(samples: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hybster-fsync-'));
  const db = new ClassicLevel<string, Uint8Array>(dir, { valueEncoding: 'view' });
  try {
    await db.open();
    const value = new Uint8Array(64).fill(1);
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await db.put(`k${i % 16}`, value, { sync: true });
      ms.push(performance.now() - t0);
    }
    return median(ms);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The echo peer, run as a separate Node.js process (`node -e`): every byte it reads goes back.
const ECHO_PEER = `
const s = require('node:net').createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); });
s.listen(0, '127.0.0.1', () => process.send(s.address().port));
process.on('disconnect', () => process.exit(0));
`;

async function hopP50Ms(samples: number): Promise<number> {
  const peer = spawn(process.execPath, ['-e', ECHO_PEER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let socket: Socket | null = null;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      peer.once('message', (m) => resolve(m as number));
      peer.once('error', reject);
      peer.once('exit', (code) => reject(new Error(`echo peer exited with ${code}`)));
    });
    const sock = connect(port, '127.0.0.1');
    socket = sock;
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const msg = Buffer.alloc(64, 7);
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        let got = 0;
        const onData = (d: Buffer) => {
          got += d.length;
          if (got >= msg.length) {
            sock.off('data', onData);
            resolve();
          }
        };
        sock.on('data', onData);
        sock.write(msg);
      });
      ms.push((performance.now() - t0) / 2);
      // Apart, as at low load: both processes go idle between messages and each one
      // pays the wake-up, as the node's messages do at 50 tx/s.
      await new Promise((r) => setTimeout(r, HOP_GAP_MS));
    }
    return median(ms);
  } finally {
    socket?.destroy();
    peer.kill();
  }
}

export async function measureLatencyFloor(quick: boolean): Promise<LatencyFloor> {
  const syncedWrite = await syncedWriteP50Ms(quick ? 50 : 200);
  const hop = await hopP50Ms(quick ? 100 : 300);
  return {
    syncedWriteP50Ms: round3(syncedWrite),
    hopP50Ms: round3(hop),
    syncedWritesPerCommit: SYNCED_WRITES_PER_COMMIT,
    hopsPerCommit: HOPS_PER_COMMIT,
    commitP50FloorMs: round3(SYNCED_WRITES_PER_COMMIT * syncedWrite + HOPS_PER_COMMIT * hop),
  };
}
