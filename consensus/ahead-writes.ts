// When a driver may send a group's messages before the group's persist is durable.
//
// A leader's PREPARE is the one message on a commit's path that waits for its own replica's
// synced write (the follower's write is on the path anyway, fused with its block at low
// load). The core marks a persist `ahead` when it records nothing but the leader's own new
// prepares, and writes it with `sentAhead`. A restart from a header with `sentAhead` takes
// ORDER and TOP past the window and sends no VIEW-CHANGE until its log is whole again
// (PillarCore.forgetAhead), so nothing sent ahead of a lost write can be certified twice or
// hidden from a view change.
//
// That only holds if the restart sees such a header: the first group that goes ahead must
// find `sentAhead` already durable, and nothing else may be in flight. Writes complete in the
// order they were issued (the driver chains them), so the latest durable header decides.
// The node (node/validator.ts) and the simulator (test/sim/sim.ts) both follow this class.

export class AheadWrites {
  /** Whether the latest durable header was written with `sentAhead`. */
  private durableSentAhead = false;
  /** Writes issued and not yet durable, and how many of them are not `sentAhead`. */
  private inflight = 0;
  private inflightPlain = 0;

  /**
   * Whether a group whose persist is marked `ahead` may perform its network actions now,
   * before that persist is durable. False for every other group: its messages wait for all
   * writes issued so far (its own included), as before.
   */
  mayGoAhead(ahead: boolean): boolean {
    return ahead && this.durableSentAhead && this.inflightPlain === 0;
  }

  /** A write of a header with this `sentAhead` was issued (in order after every earlier one). */
  issued(sentAhead: boolean): void {
    this.inflight++;
    if (!sentAhead) this.inflightPlain++;
  }

  /** The oldest write in flight is durable. */
  durable(sentAhead: boolean): void {
    if (this.inflight === 0) throw new Error('assertion: a write completed that was never issued');
    this.inflight--;
    if (!sentAhead) this.inflightPlain--;
    this.durableSentAhead = sentAhead;
  }
}
