// V8 flags every validator process should run with. `hybster start` picks them up from its
// shebang; devnet, the test and bench harnesses and the Docker image pass them explicitly
// (a flag given later on the command line, or in NODE_OPTIONS, overrides these).
//
// A larger young generation: under load a validator allocates ~13 KB per committed tx, and
// most of it lives for one consensus round (its mempool entry, the batch, the block) - longer
// than the default semi-space lasts at a few thousand tx/s, so each scavenge copied several
// MB of such objects and promoted them, and old-space marking then collected them. See
// docs/node.md "Performance" for the A/B.
export const VALIDATOR_V8_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
