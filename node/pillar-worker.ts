// Worker-thread entry of one pillar: owns one PillarCore and steps it on the events the
// main thread posts, answering each batch of events with the actions they produced (and
// the pillar's role, which the validator reads). The core is pure, so this file is only
// transport: structured clone carries bigints, Maps and Uint8Arrays as they are.
//
// The TrInX key arrives once, in the init message, in a buffer the main thread
// transferred; it is imported into a KeyObject and the bytes are zeroed. It is never
// logged or echoed: failure messages carry only the error's own message and stack.
import { parentPort } from 'node:worker_threads';
import type { ConsensusConfig } from '../consensus/config.js';
import type { Action, Event, PillarSnapshot } from '../consensus/events.js';
import { PillarCore } from '../consensus/pillar.js';
import { SoftwareTrinx } from '../consensus/trinx.js';

export interface PillarInit {
  readonly type: 'init';
  readonly config: ConsensusConfig;
  readonly validator: number;
  readonly pillar: number;
  /** Transferred to the worker; zeroed there once imported. */
  readonly trinxKey: Uint8Array;
  readonly snapshot?: PillarSnapshot;
  readonly executedNext: bigint;
}

export interface PillarStepRequest {
  readonly type: 'step';
  readonly events: readonly Event[];
}

export type ToPillarWorker = PillarInit | PillarStepRequest;

/** The pillar's role after an event, mirrored on the main thread for the validator. */
export interface PillarRole {
  readonly view: bigint;
  readonly leading: boolean;
  readonly inViewChange: boolean;
}

export interface PillarStepResult {
  readonly actions: Action[];
  readonly role: PillarRole;
}

export type FromPillarWorker =
  | { readonly type: 'ready'; readonly role: PillarRole }
  | { readonly type: 'stepped'; readonly results: PillarStepResult[] }
  | { readonly type: 'failed'; readonly message: string };

const roleOf = (core: PillarCore): PillarRole => ({
  view: core.currentView,
  leading: core.isLeading(),
  inViewChange: core.inViewChange,
});

/**
 * Byte fields the main thread consumes (network payloads, delivered batches) get an
 * exact copy whose buffer is transferred: one copy instead of clone's two, and no copy
 * of a larger buffer the bytes may be a view into. The core's own arrays stay untouched
 * (it keeps them: logged prepares, cached VIEW-CHANGE bytes), so they are never transferred.
 */
function detachBytes(actions: Action[], transfer: ArrayBuffer[]): Action[] {
  const own = (b: Uint8Array): Uint8Array => {
    const c = b.slice();
    transfer.push(c.buffer);
    return c;
  };
  return actions.map((a) => {
    switch (a.type) {
      case 'send':
        return { ...a, bytes: own(a.bytes) };
      case 'broadcast':
        return { ...a, bytes: own(a.bytes) };
      case 'deliver':
        return { ...a, batch: own(a.batch), batchDigest: own(a.batchDigest) };
      default:
        return a;
    }
  });
}

/**
 * Test-only fault, inert unless the environment names it: HYBSTER_TEST_FAULTS holding
 * `pillar-worker-crash=<pillar>@<order>` makes that pillar's worker die by an uncaught
 * exception (not a reported failure) once its core delivers an order number at or above
 * <order>, without answering the events that did it. It lets an integration test kill a
 * worker inside a real validator process (test/integration/pillar-worker-crash.test.ts).
 */
function crashOrderFromEnv(pillar: number): bigint | null {
  for (const fault of (process.env.HYBSTER_TEST_FAULTS ?? '').split(',')) {
    const m = /^pillar-worker-crash=(\d+)@(\d+)$/.exec(fault.trim());
    if (m !== null && Number(m[1]) === pillar) return BigInt(m[2] as string);
  }
  return null;
}

function serve(port: NonNullable<typeof parentPort>): void {
  let core: PillarCore | null = null;
  let crashOrder: bigint | null = null;
  const fail = (e: unknown): void => {
    const err = e instanceof Error ? e : new Error(String(e));
    const msg: FromPillarWorker = { type: 'failed', message: `${err.message}\n${err.stack ?? ''}` };
    port.postMessage(msg);
    // The main thread stops the node on this; nothing more is stepped here.
    port.close();
  };
  port.on('message', (m: ToPillarWorker) => {
    let crash: Error | null = null;
    try {
      if (m.type === 'init') {
        if (core !== null) throw new Error('pillar worker initialized twice');
        const trinx = new SoftwareTrinx(
          m.trinxKey,
          { validator: m.validator, pillar: m.pillar },
          m.snapshot?.trinx,
        );
        m.trinxKey.fill(0);
        crashOrder = crashOrderFromEnv(m.pillar);
        core = new PillarCore({
          config: m.config,
          validator: m.validator,
          pillar: m.pillar,
          trinx,
          ...(m.snapshot === undefined ? {} : { snapshot: m.snapshot }),
          executedNext: m.executedNext,
        });
        const ready: FromPillarWorker = { type: 'ready', role: roleOf(core) };
        port.postMessage(ready);
        return;
      }
      if (core === null) throw new Error('pillar worker stepped before init');
      const c = core;
      const transfer: ArrayBuffer[] = [];
      const results = m.events.map((ev) => ({
        actions: detachBytes(c.step(ev), transfer),
        role: roleOf(c),
      }));
      const at = crashOrder;
      if (at !== null && results.some((r) => r.actions.some((a) => a.type === 'deliver' && a.order >= at))) {
        crash = new Error(`test fault: pillar worker crashed at order ${at} (HYBSTER_TEST_FAULTS)`);
      } else {
        const out: FromPillarWorker = { type: 'stepped', results };
        port.postMessage(out, transfer);
      }
    } catch (e) {
      fail(e);
    }
    // Thrown outside the try: the thread dies the way a real crash kills it, unreported.
    if (crash !== null) throw crash;
  });
}

if (parentPort !== null) serve(parentPort);
