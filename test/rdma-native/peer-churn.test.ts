// A peer that is dropped and killed again and again while large messages flow both ways,
// each process a real libfabric endpoint over tcp;ofi_rxm on loopback (churn-peer.ts).
//
// The regression: with the rma data path, libfabric 1.17's tcp provider reports a remote
// write that was only partly received when its connection ended as a cancelled completion
// with a NULL context, and ofi_rxm dereferences it: the receiver died with SIGSEGV inside
// libfabric (rxm_handle_comp_error, reached from fi_cq_readfrom). A busy event loop (the
// event-loop completion mode drains the socket only between JS turns) keeps writes half
// received for longest, which is how validators crashed when a peer restarted. The
// survivor below blocks its loop often and drops its connections while the peer writes,
// so the old code crashed within the first rounds; see rmaSafe in rdma-native/transport.ts.
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CompletionMode } from '../../rdma-native/transport.js';
import type { ChurnCommand, ChurnConfig, ChurnReport } from './churn-peer.js';
import { requireRdma } from './require-rdma.js';

const PEER_SCRIPT = fileURLToPath(new URL('./churn-peer.js', import.meta.url));
const ROUNDS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Exit = { code: number | null; signal: NodeJS.Signals | null };
type Listening = Extract<ChurnReport, { type: 'listening' }>;
type Stats = Extract<ChurnReport, { type: 'stats' }>;

class Peer {
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly listening: Listening,
    exited: Promise<Exit>,
  ) {
    this.exited = exited;
    void exited.then((e) => {
      this.exit = e;
    });
  }

  static async start(cfg: ChurnConfig): Promise<Peer> {
    const child = fork(PEER_SCRIPT, [JSON.stringify(cfg)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<Exit>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const listening = (await Peer.next(child, exited, 'listening')) as Listening;
    return new Peer(child, listening, exited);
  }

  private static next(
    child: ChildProcess,
    exited: Promise<Exit>,
    type: ChurnReport['type'],
  ): Promise<ChurnReport> {
    let on: ((m: ChurnReport) => void) | undefined;
    const report = new Promise<ChurnReport>((resolve) => {
      on = (m) => {
        if (m.type === type) resolve(m);
      };
      child.on('message', on);
    });
    const died = exited.then(({ code, signal }): never => {
      throw new Error(
        `peer process ${child.pid} died (exit code ${code}, signal ${signal}) before '${type}'`,
      );
    });
    return Promise.race([report, died]).finally(() => {
      if (on) child.off('message', on);
    });
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  send(c: ChurnCommand): void {
    this.child.send(c);
  }

  async stats(): Promise<Stats> {
    const r = Peer.next(this.child, this.exited, 'stats');
    this.send({ type: 'stats' });
    return (await r) as Stats;
  }

  async close(): Promise<Exit> {
    const r = Peer.next(this.child, this.exited, 'stats');
    this.send({ type: 'close' });
    await r;
    return this.exited;
  }
}

const portOf = (endpoint: string): number => Number(/:(\d+)$/.exec(endpoint)?.[1]);

for (const completion of ['event-loop', 'thread'] as CompletionMode[]) {
  describe(`rdma-native over tcp;ofi_rxm (${completion}) with a peer dropped and killed mid-write`, function () {
    this.timeout(60_000);

    before(function () {
      requireRdma(this);
    });

    it(`keeps running through ${ROUNDS} rounds of dropped connections and a killed, restarted peer`, async () => {
      // The survivor asks for the node's default path (rma) and blocks its event loop for 20 ms
      // every 5 ms, as a busy validator does; it drops every connection every 250 ms.
      const survivor = await Peer.start({
        port: 0,
        dial: [],
        completion,
        dataPath: 'rma',
        busyMs: 20,
        closeEveryMs: 250,
      });
      const peerCfg = { dial: [survivor.listening.endpoint], completion, dataPath: 'rma' as const };
      let peer: Peer | undefined;
      try {
        assert.equal(survivor.listening.completion, completion);
        assert.equal(survivor.listening.dataPath, 'msg', 'over tcp;ofi_rxm the msg path runs instead of rma');
        peer = await Peer.start({ port: 0, ...peerCfg });
        const port = portOf(peer.listening.endpoint);
        survivor.send({ type: 'dial', endpoint: peer.listening.endpoint });
        for (let i = 0; i < ROUNDS; i++) {
          await sleep(900);
          if (!survivor.alive)
            assert.fail(`the survivor died in round ${i}: ${JSON.stringify(await survivor.exited)}`);
          peer.child.kill('SIGKILL');
          await peer.exited;
          peer = await Peer.start({ port, ...peerCfg });
        }
        const before = await survivor.stats();
        await sleep(600);
        const after = await survivor.stats();
        assert.ok(after.received > before.received, 'the survivor still receives from the restarted peer');
        assert.ok(after.dialed >= 2, `the survivor reconnected (${after.dialed} dials)`);
        assert.deepEqual(await survivor.close(), { code: 0, signal: null }, 'the survivor exited cleanly');
      } finally {
        peer?.child.kill('SIGKILL');
        survivor.child.kill('SIGKILL');
      }
    });
  });
}
