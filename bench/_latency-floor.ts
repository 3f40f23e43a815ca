// What this machine allows a commit's latency to be, whatever the node does: measured in
// the same run as bench/network.ts's latency phases, so the low-load goal can be read
// against it.
//
// A commit waits for three synced writes in sequence (the leader's PREPARE state, a
// follower's state before its COMMIT, the block; docs/node.md says why each is needed)
// and for at least two messages between processes (PREPARE to a follower, COMMIT back).
// So no implementation on this machine commits faster than
//   3 x (synced LevelDB write p50) + 2 x (one-way loopback message p50 between processes).
//
// That bound takes each write alone on an idle disk. On this machine the three validators
// share one disk, and two of the three writes happen on several validators at once (both
// followers persist the same PREPARE; all three write the block), so the bench also plays
// that write sequence on three databases, commits 20 ms apart as at 50 tx/s: the p50 of
// what one follower waits for (the leader's write, then its own next to the other
// follower's, then its block next to two others) is the floor for this shared disk.
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
  /**
   * p50 of one follower's three synced writes in sequence when, as here, three validators
   * share one disk: its own state write beside the other follower's, its block beside two
   * others (three databases, one commit every 20 ms).
   */
  sharedDiskWritePathP50Ms: number;
  /** sharedDiskWritePathP50Ms + 2 hops: the floor for three validators on this one disk. */
  sharedDiskCommitP50FloorMs: number;
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

/** A follower's synced writes at low load, with the other validators writing beside it. */
async function sharedDiskWritePathP50Ms(samples: number): Promise<number> {
  const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'hybster-fsync-')));
  const dbs = dirs.map((d) => new ClassicLevel<string, Uint8Array>(d, { valueEncoding: 'view' }));
  try {
    await Promise.all(dbs.map((db) => db.open()));
    const [leader, follower, other] = dbs as [(typeof dbs)[0], (typeof dbs)[0], (typeof dbs)[0]];
    const value = new Uint8Array(64).fill(1);
    const timed = async (db: typeof leader, key: string): Promise<number> => {
      const t0 = performance.now();
      await db.put(key, value, { sync: true });
      return performance.now() - t0;
    };
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const key = `k${i % 16}`;
      const prepare = await timed(leader, key);
      const [commit] = await Promise.all([timed(follower, key), timed(other, key)]);
      const [block] = await Promise.all([
        timed(follower, `b${key}`),
        timed(leader, `b${key}`),
        timed(other, `b${key}`),
      ]);
      ms.push(prepare + (commit as number) + (block as number));
      await new Promise((r) => setTimeout(r, 20));
    }
    return median(ms);
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
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
  const shared = await sharedDiskWritePathP50Ms(quick ? 50 : 150);
  return {
    syncedWriteP50Ms: round3(syncedWrite),
    hopP50Ms: round3(hop),
    syncedWritesPerCommit: SYNCED_WRITES_PER_COMMIT,
    hopsPerCommit: HOPS_PER_COMMIT,
    commitP50FloorMs: round3(SYNCED_WRITES_PER_COMMIT * syncedWrite + HOPS_PER_COMMIT * hop),
    sharedDiskWritePathP50Ms: round3(shared),
    sharedDiskCommitP50FloorMs: round3(shared + HOPS_PER_COMMIT * hop),
  };
}
