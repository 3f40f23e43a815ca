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
// share one disk, and a follower's write happens on both followers at once, so the bench
// also plays the write sequence on three databases, commits 20 ms apart as at 50 tx/s.
// At low load a follower writes its consensus state and the block in one synced batch
// (docs/node.md, "One synced write per follower"), so two paths follow:
// - a tx that entered at a follower is committed there after the leader's write and then
//   its own (beside the other follower's): 2 writes, and 2 hops (gossip to the leader, the
//   PREPARE back);
// - a tx that entered at the leader waits for those two writes, the COMMIT's hop back and
//   the leader's own block write: 3 writes and 2 hops.
// The bench reports the median of the three validators' p50s, and two of the three are
// followers, so the follower path is the floor that number is read against.
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
   * p50 of the leader path's three synced writes in sequence when, as here, three validators
   * share one disk: the leader's, a follower's beside the other follower's, the leader's
   * block (three databases, one commit every 20 ms).
   */
  sharedDiskWritePathP50Ms: number;
  /** sharedDiskWritePathP50Ms + 2 hops: the leader path's floor on this one disk. */
  sharedDiskCommitP50FloorMs: number;
  /** p50 of the follower path's two writes: the leader's, then its own beside the other follower's. */
  sharedDiskFollowerWritePathP50Ms: number;
  /**
   * sharedDiskFollowerWritePathP50Ms + 2 hops: the follower path's floor on this disk, and
   * so the floor of the reported median (two of the three validators are followers).
   */
  sharedDiskFollowerCommitP50FloorMs: number;
}

const SYNCED_WRITES_PER_COMMIT = 3;
const HOPS_PER_COMMIT = 2;
const HOP_GAP_MS = 10;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

type Db = ClassicLevel<string, Uint8Array>;

/** Runs `fn` on `n` fresh databases in the temp directory the testnet uses, then removes them. */
async function withTempDbs<T>(n: number, fn: (dbs: Db[]) => Promise<T>): Promise<T> {
  const dirs = Array.from({ length: n }, () => mkdtempSync(join(tmpdir(), 'hybster-fsync-')));
  const dbs = dirs.map((d) => new ClassicLevel<string, Uint8Array>(d, { valueEncoding: 'view' }));
  try {
    await Promise.all(dbs.map((db) => db.open()));
    return await fn(dbs);
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const VALUE = new Uint8Array(64).fill(1);

/** Milliseconds one synced 64-byte put takes. */
async function timedPut(db: Db, key: string): Promise<number> {
  const t0 = performance.now();
  await db.put(key, VALUE, { sync: true });
  return performance.now() - t0;
}

function syncedWriteP50Ms(samples: number): Promise<number> {
  return withTempDbs(1, async ([db]) => {
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) ms.push(await timedPut(db as Db, `k${i % 16}`));
    return median(ms);
  });
}

/** The synced writes of a commit at low load on three databases of one disk: leader and follower paths. */
function sharedDiskWritePathsP50Ms(samples: number): Promise<{ leader: number; follower: number }> {
  return withTempDbs(3, async ([leader, follower, other]) => {
    const leaderPath: number[] = [];
    const followerPath: number[] = [];
    for (let i = 0; i < samples; i++) {
      const key = `k${i % 16}`;
      const prepare = await timedPut(leader as Db, key);
      const [commit] = await Promise.all([timedPut(follower as Db, key), timedPut(other as Db, key)]);
      const block = await timedPut(leader as Db, `b${key}`);
      followerPath.push(prepare + (commit as number));
      leaderPath.push(prepare + (commit as number) + block);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { leader: median(leaderPath), follower: median(followerPath) };
  });
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
  const shared = await sharedDiskWritePathsP50Ms(quick ? 50 : 150);
  return {
    syncedWriteP50Ms: round3(syncedWrite),
    hopP50Ms: round3(hop),
    syncedWritesPerCommit: SYNCED_WRITES_PER_COMMIT,
    hopsPerCommit: HOPS_PER_COMMIT,
    commitP50FloorMs: round3(SYNCED_WRITES_PER_COMMIT * syncedWrite + HOPS_PER_COMMIT * hop),
    sharedDiskWritePathP50Ms: round3(shared.leader),
    sharedDiskCommitP50FloorMs: round3(shared.leader + HOPS_PER_COMMIT * hop),
    sharedDiskFollowerWritePathP50Ms: round3(shared.follower),
    sharedDiskFollowerCommitP50FloorMs: round3(shared.follower + HOPS_PER_COMMIT * hop),
  };
}
