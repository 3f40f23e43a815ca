// `npm run bench -- certificates [--quick]`: main-thread cost per block of the two steps
// that follow a block's commit certificate, each against the code it replaced, A and B
// alternated in one process, medians of the rounds.
//   store  a validator's loop at low load: write block h (2 transfers, synced), then put
//          block h's certificate; the next block's batch carries it. "separate put" writes
//          each certificate on its own at once (certWriteDelayMs 0, the old behaviour);
//          "deferred" waits CERT_WRITE_DELAY_MS for a block batch to carry it (never
//          needed here). Cost = CPU time of the main thread alone (/proc schedstat, ns),
//          so LevelDB's thread-pool work and the fsync wait are not counted.
//   api    certificateJson of each new certificate through CertVerdicts: "verify" checks
//          its signatures (two Ed25519 verifications for f = 1, as before), "trusted"
//          answers for a certificate object the store holds as verified.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CertVerdicts } from '../api/cert-verdicts.js';
import { certificateJson } from '../api/views.js';
import { encodeBatch } from '../ledger/batch.js';
import { blockHash, type CommitCertificate, signCommit } from '../ledger/block.js';
import { Executor } from '../ledger/executor.js';
import { type KeyPair, keyPairFromSeed, sha256 } from '../ledger/keys.js';
import { LedgerStore } from '../ledger/store.js';
import { encodeTx, signTx } from '../ledger/tx.js';
import { machineInfo, writeResult } from './_results.js';
import { median } from './_stats.js';

const CHAIN = 'bench-certificates';
const F = 1;
const STAND_IN_SIGNATURES = [0, 1].map((validator) => ({
  validator,
  signature: new Uint8Array(64).fill(validator + 1),
}));

/**
 * CPU time of this (the main) thread in microseconds; Linux only. The kernel brings a running
 * thread's count up to date only when it is switched out (or at a tick), so a reading that
 * brackets a measurement first sleeps a moment (settledCpuUs); readings inside a loop that
 * awaits I/O are current within the last wake-up.
 */
function mainThreadCpuUs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return Number(fields[0]) / 1000;
}
async function settledCpuUs(): Promise<number> {
  await new Promise((r) => setTimeout(r, 2));
  return mainThreadCpuUs();
}

const key = (label: string): KeyPair => keyPairFromSeed(sha256(new TextEncoder().encode(label)));

interface Chain {
  store: LedgerStore;
  exec: Executor;
  senders: { kp: KeyPair; nonce: bigint }[];
}

async function openChain(
  dir: string,
  certWriteDelayMs: number | undefined,
  senders: KeyPair[],
): Promise<Chain> {
  const store = await LedgerStore.open(dir, {
    genesisHash: sha256(new TextEncoder().encode('bench certificates genesis')),
    genesisAccounts: senders.map((kp) => ({ address: kp.publicKey, balance: 1n << 40n })),
    sync: true,
    ...(certWriteDelayMs === undefined ? {} : { certWriteDelayMs }),
  });
  // The validator verified each tx on intake; so does not this loop (it measures the store).
  const exec = new Executor({ store, chainId: CHAIN, signatureVerified: () => true });
  return { store, exec, senders: senders.map((kp) => ({ kp, nonce: 1n })) };
}

/** Writes `blocks` blocks, each followed by its certificate; main-thread CPU us per block. */
async function storeRound(c: Chain, blocks: number): Promise<number> {
  // Txs and signatures are made before timing: the validator has them already.
  const batches = Array.from({ length: blocks }, () =>
    encodeBatch({
      timestampMs: BigInt(Date.now()),
      txs: c.senders.map((s, i) =>
        encodeTx(
          signTx(
            {
              chainId: CHAIN,
              from: s.kp.publicKey,
              nonce: s.nonce++,
              payload: {
                type: 'transfer',
                to: c.senders[(i + 1) % c.senders.length]!.kp.publicKey,
                amount: 1n,
              },
            },
            s.kp.secretKey,
          ),
        ),
      ),
    }),
  );
  const t0 = await settledCpuUs();
  for (const batch of batches) {
    const order = c.store.latestHeight();
    const b = await c.exec.executeBatch({ order, view: 0n, proposer: 0, batch });
    const height = b.header.height;
    const hash = blockHash(b.header);
    // The store never checks signatures: fixed bytes stand in for the validator's signing.
    const cert: CommitCertificate = { height, blockHash: hash, signatures: STAND_IN_SIGNATURES };
    await c.store.putCommitCertificate(cert, { verified: true });
  }
  await c.store.flush();
  return ((await settledCpuUs()) - t0) / blocks;
}

export async function run(opts: { quick: boolean }): Promise<unknown> {
  const rounds = opts.quick ? 5 : 15;
  const blocksPerRound = opts.quick ? 20 : 100;
  const validators = [0, 1, 2].map((i) => key(`validator ${i}`));
  const validatorKeys = validators.map((v) => v.publicKey);
  const senders = [key('sender a'), key('sender b')];

  // ---- store: separate put per certificate vs deferred ----
  const root = mkdtempSync(join(os.tmpdir(), 'bench-certificates-'));
  const chains = {
    separatePut: await openChain(join(root, 'a'), 0, senders),
    deferred: await openChain(join(root, 'b'), undefined, senders),
  };
  const storeUs: Record<keyof typeof chains, number[]> = { separatePut: [], deferred: [] };
  try {
    await storeRound(chains.separatePut, 5); // warm-up
    await storeRound(chains.deferred, 5);
    for (let r = 0; r < rounds; r++) {
      const order =
        r % 2 === 0 ? (['separatePut', 'deferred'] as const) : (['deferred', 'separatePut'] as const);
      for (const name of order) storeUs[name].push(await storeRound(chains[name], blocksPerRound));
    }
  } finally {
    for (const c of Object.values(chains)) await c.store.close();
  }
  const separateWrites = {
    separatePut: chains.separatePut.store.certificateWritesSeparate,
    deferred: chains.deferred.store.certificateWritesSeparate,
  };
  rmSync(root, { recursive: true, force: true });

  // ---- api: verify each new certificate vs trust the node's verified ones ----
  const certs = Array.from({ length: opts.quick ? 100 : 300 }, (_, i) => {
    const height = BigInt(i + 1);
    const hash = sha256(Uint8Array.of(i & 0xff, i >> 8));
    return {
      height,
      blockHash: hash,
      signatures: [0, 1].map((v) => signCommit(height, hash, v, validators[v]!.secretKey)),
    };
  });
  const verifiedObjects = new WeakSet<CommitCertificate>(certs);
  const apiUs: Record<'verify' | 'trusted', number[]> = { verify: [], trusted: [] };
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? (['verify', 'trusted'] as const) : (['trusted', 'verify'] as const)) {
      // A fresh cache each round: every certificate is new to it, as each block's is.
      const verdicts = new CertVerdicts(8192, validatorKeys, F, {
        trusted: name === 'trusted' ? (c) => verifiedObjects.has(c) : () => false,
      });
      const t0 = await settledCpuUs();
      for (const c of certs) {
        const json = certificateJson(c, validatorKeys, F, verdicts.verify);
        if (json?.verified !== true) throw new Error('a good certificate did not verify');
      }
      apiUs[name].push(((await settledCpuUs()) - t0) / certs.length);
    }
  }

  const r2 = (x: number) => Math.round(x * 100) / 100;
  const results = {
    store: {
      blocksPerRound,
      txsPerBlock: senders.length,
      mainThreadUsPerBlock: {
        separatePut: r2(median(storeUs.separatePut)),
        deferred: r2(median(storeUs.deferred)),
      },
      savedUsPerBlock: r2(median(storeUs.separatePut) - median(storeUs.deferred)),
      // Each round's pair ran back to back: the median of their differences is less exposed
      // to the machine's load changing between rounds.
      savedUsPerBlockPairedMedian: r2(median(storeUs.separatePut.map((a, i) => a - storeUs.deferred[i]!))),
      separateCertificateWrites: separateWrites,
      samplesUs: { separatePut: storeUs.separatePut.map(r2), deferred: storeUs.deferred.map(r2) },
    },
    api: {
      certificates: certs.length,
      mainThreadUsPerCertificate: { verify: r2(median(apiUs.verify)), trusted: r2(median(apiUs.trusted)) },
      savedUsPerCertificate: r2(median(apiUs.verify) - median(apiUs.trusted)),
      samplesUs: { verify: apiUs.verify.map(r2), trusted: apiUs.trusted.map(r2) },
    },
  };
  console.log('step                                   old us   new us   saved us');
  console.log(
    `store: block + certificate, per block  ${results.store.mainThreadUsPerBlock.separatePut.toFixed(1).padStart(7)}  ${results.store.mainThreadUsPerBlock.deferred.toFixed(1).padStart(7)}  ${results.store.savedUsPerBlock.toFixed(1).padStart(8)}`,
  );
  console.log(
    `api: a new certificate's JSON          ${results.api.mainThreadUsPerCertificate.verify.toFixed(1).padStart(7)}  ${results.api.mainThreadUsPerCertificate.trusted.toFixed(2).padStart(7)}  ${results.api.savedUsPerCertificate.toFixed(1).padStart(8)}`,
  );
  console.log(
    `store: saved per block, median of the rounds' paired differences: ${results.store.savedUsPerBlockPairedMedian.toFixed(1)} us`,
  );
  console.log(
    `separate certificate writes: old ${separateWrites.separatePut}, new ${separateWrites.deferred} (rounds ${rounds}, medians)`,
  );
  const out = {
    name: 'certificates',
    quick: opts.quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    rounds,
    results,
  };
  writeResult('certificates', out);
  return out;
}
