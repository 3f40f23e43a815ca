// Route handlers for the JSON routes in api/routes.ts. Reads go straight to the
// LevelDB store; writes go through the node (mempool). Each handler either returns
// a value matching its response schema or throws an ApiError.
import assert from 'node:assert/strict';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, type Registry } from 'prom-client';
import type { z } from 'zod';
import type { Block, CommitCertificate } from '../ledger/block.js';
import { toHex } from '../ledger/codec/binary.js';
import { decodeTx, encodeTx, TX_BYTES_MAX, txFromJson, txHash } from '../ledger/tx.js';
import { SecondLookupAdmission } from './admission.js';
import {
  batchAnswerJson,
  batchBodyValidatorCompiler,
  hexBytes,
  refusedJson,
  type SubmitTxsBodyT,
  takenJson,
} from './batch-body.js';
import { BlockTxs } from './block-txs.js';
import { CertVerdicts } from './cert-verdicts.js';
import { ApiError, rejectionToApiError } from './errors.js';
import { answerBytes, type ImmutableAnswer, immutableAnswer, sendImmutable } from './immutable.js';
import { Lru } from './lru.js';
import type { NodePort, SubmitOutcome, TxStatus } from './node-port.js';
import { proofOf } from './proofs.js';
import { type RouteDef, routes } from './routes.js';
import * as s from './schemas.js';
import { TxAnswerCache } from './tx-answers.js';
import {
  blockJson,
  certificateJson,
  decodeStored,
  headerJson,
  hexToBytes,
  kvEntryJson,
  num,
  printableUtf8,
  strip0x,
  txJson,
  txResultJson,
} from './views.js';

export interface HandlerLimits {
  pageLimitMax: number;
  /** Most txs in one POST /v1/txs/batch. */
  batchTxsMax: number;
  /** Body limit of POST /v1/txs/batch. */
  batchBodyBytesMax: number;
  commitTimeoutMsDefault: number;
  commitTimeoutMsMax: number;
  /** Rendered JSON (UTF-8 bytes) of blocks whose commit certificate is final (immutable from then on). */
  blockCacheEntries: number;
  blockCacheBytesMax: number;
  /** Per-block txs, results, hash and Merkle tree, for tx lookups and proofs (api/block-txs.ts). */
  blockTxsCacheEntries: number;
  blockTxsCacheBytesMax: number;
  /** Rendered answers of GET /v1/txs/:hash for committed txs (immutable), by tx hash. */
  txAnswerCacheEntries: number;
  txAnswerCacheBytesMax: number;
  /** Remembered commit-certificate verdicts (api/cert-verdicts.ts). */
  certVerdictsEntries: number;
}

/** A route's fastify schema: its own schemas plus ErrorBody for each documented error status. */
function schemaOf<D extends RouteDef>(d: D) {
  const response: Record<number, z.ZodType> = { ...d.response };
  for (const code of d.errors) response[code] = s.ErrorBody;
  const out: Record<string, unknown> = { summary: d.summary, tags: d.tags, response };
  if (d.params) out['params'] = d.params;
  if (d.querystring) out['querystring'] = d.querystring;
  if (d.body) out['body'] = d.body;
  return out as {
    summary: string;
    tags: string[];
    params: D['params'];
    querystring: D['querystring'];
    body: D['body'];
    response: Record<number, z.ZodType>;
  };
}

/** The API's own certificate verifications; shared by servers on one registry. */
function certVerificationsCounter(registry: Registry): Counter {
  const name = 'api_certificate_verifications_total';
  return (
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({
      name,
      help: 'Commit certificates whose signatures the API verified (not those the node put as verified)',
      registers: [registry],
    })
  );
}

const notHex = (): ApiError =>
  new ApiError('malformed', 'tx: not hex (use encoding: "base64" for base64)', 'tx');

/** Sends already-serialized JSON as is (no schema serializer: the caller built it to the schema's type). */
function sendJsonString(reply: FastifyReply, json: string | Buffer): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}

export function registerHandlers(app: FastifyInstance, node: NodePort, limits: HandlerLimits): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = node;
  const validatorKeys = node.validators.map((v) => v.publicKey);
  // Rendered blocks are kept as UTF-8 bytes: sent without re-encoding a 50 KB string per
  // request, and held outside the JS heap, where the garbage collector need not mark them.
  // Keyed by height as a number: a request's height then needs no BigInt to look up.
  const blockCache = new Lru<number, ImmutableAnswer>(
    limits.blockCacheEntries,
    limits.blockCacheBytesMax,
    answerBytes,
  );
  // A committed tx's answer never changes: a hit skips the LevelDB lookup and the rendering.
  // Keyed by the hash as lowercase hex without 0x; a tx gets in on its second lookup.
  // Held outside the JS heap (api/tx-answers.ts): an insert leaves nothing to promote.
  const txAdmission = new SecondLookupAdmission();
  const txAnswers = new TxAnswerCache(limits.txAnswerCacheEntries, limits.txAnswerCacheBytesMax);
  const txsCache = new Lru<bigint, BlockTxs>(
    limits.blockTxsCacheEntries,
    limits.blockTxsCacheBytesMax,
    (b) => b.bytes,
  );
  // Certificates the node put as verified (formed from signatures it checked) are not checked
  // again; one read from disk is, once (api/cert-verdicts.ts).
  const certVerifications = certVerificationsCounter(node.metrics);
  const verdicts = new CertVerdicts(limits.certVerdictsEntries, validatorKeys, node.f, {
    trusted: (c) => store.certificateVerified(c),
    onVerify: () => certVerifications.inc(),
  });
  // Requests that miss a cache for the same block share one read and render: when a new
  // block arrives, every explorer watching asks for it at once.
  const rendering = new Map<bigint, Promise<RenderedBlock>>();
  const loadingBlocks = new Map<bigint, Promise<RenderedBlock | null>>();
  const loadingTxs = new Map<bigint, Promise<BlockTxs | null>>();
  function shared<V>(inflight: Map<bigint, Promise<V>>, height: bigint, make: () => Promise<V>): Promise<V> {
    const running = inflight.get(height);
    if (running !== undefined) return running;
    const p = make().finally(() => inflight.delete(height));
    inflight.set(height, p);
    return p;
  }
  const pageLimit = (n: number): number => Math.min(n, limits.pageLimitMax);

  const cert = (c: CommitCertificate | null) => certificateJson(c, validatorKeys, node.f, verdicts.verify);

  /** A block's JSON; an ImmutableAnswer once its commit certificate is final (store.certificateFinal). */
  type RenderedBlock = ImmutableAnswer | Buffer;

  /** Renders a block, and caches the answer once the block has its commit certificate. */
  async function render(block: Block): Promise<RenderedBlock> {
    const height = block.header.height;
    const commit = await store.getCommitCertificate(height);
    const json = JSON.stringify(blockJson(block, commit, validatorKeys, node.f, verdicts.verify));
    // Until its certificate is final the answer can still change (commit: null now, or after a
    // crash a certificate collected again with other signers): not cached, no ETag.
    if (commit === null || !store.certificateFinal(height)) return Buffer.from(json);
    const answer = immutableAnswer(json);
    blockCache.set(num(height), answer);
    return answer;
  }

  /** The answer for a block already read (by hash): cached, or rendered once for all who ask at once. */
  function renderBlock(block: Block): Promise<RenderedBlock> {
    const height = block.header.height;
    const cached = blockCache.get(num(height));
    if (cached !== undefined) return Promise.resolve(cached);
    return shared(rendering, height, () => render(block));
  }

  /**
   * The answer for the block at `height` after a blockCache miss (the caller looked): read
   * and rendered once for all who ask at once. A request that comes after the render finds
   * the answer in blockCache, which is filled before the shared promise is let go.
   */
  function loadBlock(height: bigint): Promise<RenderedBlock | null> {
    return shared(loadingBlocks, height, async () => {
      const block = await store.getBlock(height);
      // Through `rendering` too: a by-hash request for the same block shares this render.
      return block === null ? null : shared(rendering, height, () => render(block));
    });
  }

  function blockAt(height: bigint): Promise<RenderedBlock | null> {
    // Heights past 2^53 (the route admits 16 digits) are never cached, and never stored.
    const n = Number(height);
    const cached = Number.isSafeInteger(n) ? blockCache.get(n) : undefined;
    return cached === undefined ? loadBlock(height) : Promise.resolve(cached);
  }

  /** Sends a block: with its ETag and as immutable once final, plain otherwise (or when `plain`). */
  function sendBlock(
    req: FastifyRequest,
    reply: FastifyReply,
    rendered: RenderedBlock,
    plain = false,
  ): FastifyReply {
    if (Buffer.isBuffer(rendered)) return sendJsonString(reply, rendered);
    if (plain) return sendJsonString(reply, rendered.body);
    return sendImmutable(req.headers['if-none-match'], reply, rendered);
  }

  /** What tx lookups need from a block (txs, results, hash, Merkle tree), cached per height. */
  function blockTxsAt(height: bigint): Promise<BlockTxs | null> {
    const cached = txsCache.get(height);
    if (cached !== undefined) return Promise.resolve(cached);
    return shared(loadingTxs, height, async () => {
      const block = await store.getBlock(height);
      if (block === null) return null;
      const entry = new BlockTxs(block);
      txsCache.set(height, entry);
      return entry;
    });
  }

  async function locationJson(loc: { height: bigint; index: number }) {
    const b = await blockTxsAt(loc.height);
    return { height: num(loc.height), index: loc.index, blockHash: b?.hash ?? '' };
  }

  /** Waits (bounded) for the block's commit certificate, which arrives after the block is written. */
  const waitForCertificate = (height: bigint, deadline: number): Promise<CommitCertificate | null> =>
    store.waitForCommitCertificate(height, deadline);

  // ---- transactions ------------------------------------------------------------------

  /** The encoded bytes of one submitted tx (string or JSON), or the error POST /v1/txs answers for it. */
  function encodedFromItem(tx: unknown, encoding: 'hex' | 'base64'): Uint8Array | ApiError {
    if (typeof tx !== 'string') {
      const parsed = txFromJson(tx);
      if (!parsed.ok) {
        const field = parsed.error.field ? `tx.${parsed.error.field}` : 'tx';
        return new ApiError('schema-violation', parsed.error.message, field);
      }
      try {
        return encodeTx(parsed.value);
      } catch (e) {
        return new ApiError('too-large', (e as Error).message, 'tx');
      }
    }
    if (encoding === 'hex') {
      const h = strip0x(tx);
      if (h.length < 2 || h.length % 2 !== 0) return notHex();
      // Too long: not decoded, but still told apart from non-hex (the rare path keeps its regex).
      if (h.length / 2 > TX_BYTES_MAX) {
        if (!/^[0-9a-fA-F]*$/.test(h)) return notHex();
        return new ApiError('too-large', `tx: ${h.length / 2} bytes exceeds ${TX_BYTES_MAX}`, 'tx');
      }
      return hexBytes(h) ?? notHex();
    }
    if (tx.length < 2 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(tx)) {
      return new ApiError('malformed', 'tx: not base64', 'tx');
    }
    const bytes = new Uint8Array(Buffer.from(tx, 'base64'));
    if (bytes.length > TX_BYTES_MAX) {
      return new ApiError('too-large', `tx: ${bytes.length} bytes exceeds ${TX_BYTES_MAX}`, 'tx');
    }
    return bytes;
  }

  /** The checks the API makes before the node sees a tx: it decodes and names this chain. */
  function precheck(encoded: Uint8Array): ApiError | null {
    // Views, not copies: the decoded tx is read for its chain id here and then dropped.
    const decoded = decodeTx(encoded, { views: true });
    if (!decoded.ok) {
      const field = decoded.error.field === undefined ? 'tx' : `tx.${decoded.error.field}`;
      return new ApiError('malformed', `tx: ${decoded.error.message}`, field);
    }
    if (decoded.value.chainId !== node.chainId) {
      return new ApiError(
        'wrong-chain',
        `chainId "${decoded.value.chainId}" is not this network's "${node.chainId}"`,
        'tx.chainId',
      );
    }
    return null;
  }

  r.route({
    method: 'POST',
    url: routes.submitTx.url,
    schema: schemaOf(routes.submitTx),
    handler: async (req, reply) => {
      const body = req.body as z.output<typeof s.SubmitTxBody>;
      const encoded = encodedFromItem(body.tx, body.encoding);
      if (encoded instanceof ApiError) throw encoded;
      const refused = precheck(encoded);
      if (refused !== null) throw refused;
      const hash = txHash(encoded);
      const hashHex = toHex(hash);
      const timeoutMs = Math.min(body.timeoutMs ?? limits.commitTimeoutMsDefault, limits.commitTimeoutMsMax);
      const deadline = Date.now() + timeoutMs;

      // Idempotency: a tx already in a block is never executed again. The node answers it
      // `known` with its location (NodePort.submitTx: the mempool refuses its used nonce, and
      // only then is the ledger asked), so a new tx costs no ledger read on its way in.
      let status: TxStatus;
      let duplicate = false;
      const outcome = await node.submitTx(encoded);
      if (outcome.kind === 'rejected') throw rejectionToApiError(outcome);
      if (outcome.kind === 'known') {
        duplicate = true;
        status = outcome.status.state === 'unknown' ? { state: 'pending' } : outcome.status;
      } else {
        status = { state: 'pending' };
      }

      if (status.state !== 'committed' && body.mode === 'commit') {
        const loc = await node.waitForTx(hash, Math.max(0, deadline - Date.now()));
        if (loc !== null) status = { state: 'committed', location: loc };
      }
      if (status.state !== 'committed') {
        return reply.code(202).send({ hash: hashHex, status: 'pending', duplicate });
      }
      const loc = status.location;
      const commit =
        body.mode === 'commit'
          ? await waitForCertificate(loc.height, deadline)
          : await store.getCommitCertificate(loc.height);
      return reply.code(200).send({
        hash: hashHex,
        status: 'committed',
        duplicate,
        location: await locationJson(loc),
        result: txResultJson(loc.result),
        commit: cert(commit),
      });
    },
  });

  /** Nodes without a batch path take the txs one by one, in order (the port's contract). */
  async function submitAll(encoded: readonly Uint8Array[]): Promise<SubmitOutcome[]> {
    if (node.submitTxs !== undefined) return node.submitTxs(encoded);
    const out: SubmitOutcome[] = [];
    for (const e of encoded) out.push(await node.submitTx(e));
    return out;
  }

  r.route({
    method: 'POST',
    url: routes.submitTxs.url,
    schema: schemaOf(routes.submitTxs),
    bodyLimit: limits.batchBodyBytesMax,
    // The plain body (an array of strings) is checked by hand; anything else by the zod schema.
    validatorCompiler: batchBodyValidatorCompiler,
    handler: async (req, reply) => {
      const body = req.body as SubmitTxsBodyT;
      const items = body.txs;
      if (items.length > limits.batchTxsMax) {
        throw new ApiError(
          'too-large',
          `${items.length} txs in one batch; at most ${limits.batchTxsMax}`,
          'txs',
        );
      }
      // Each result is rendered to JSON as it is known (api/batch-body.ts): no object per tx.
      const results: string[] = new Array(items.length);
      // The txs that parse go to the node in one call; `slots` maps them back.
      const toNode: Uint8Array[] = [];
      const slots: number[] = [];
      for (let i = 0; i < items.length; i++) {
        const encoded = encodedFromItem(items[i], body.encoding);
        if (encoded instanceof ApiError) {
          results[i] = refusedJson(encoded);
          continue;
        }
        toNode.push(encoded);
        slots.push(i);
      }
      const outcomes = toNode.length === 0 ? [] : await submitAll(toNode);
      assert.equal(outcomes.length, toNode.length, 'the node answers every tx of a batch');
      let retryAfterMs: number | undefined;
      let unavailable = 0;
      for (let k = 0; k < outcomes.length; k++) {
        const o = outcomes[k] as SubmitOutcome;
        const i = slots[k] as number;
        if (o.kind === 'accepted') {
          results[i] = takenJson(toHex(o.hash), 'accepted');
          continue;
        }
        // The API's own checks (the tx decodes and names this chain) answer before the node's
        // verdict, as they always have; the node decodes every tx anyway, so they are run only
        // for the txs it did not take, and a tx it takes is decoded once.
        const own = precheck(toNode[k] as Uint8Array);
        if (own !== null) {
          results[i] = refusedJson(own);
        } else if (o.kind === 'rejected') {
          const e = rejectionToApiError(o);
          if (e.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, e.retryAfterMs);
          if (o.code === 'unavailable') unavailable++;
          results[i] = refusedJson(e);
        } else if (o.status.state === 'committed') {
          const loc = o.status.location;
          const committed: z.output<typeof s.SubmitTxsAccepted> = {
            hash: toHex(o.hash),
            status: 'committed',
            location: await locationJson(loc),
            result: txResultJson(loc.result),
          };
          results[i] = JSON.stringify(committed);
        } else {
          results[i] = takenJson(toHex(o.hash), 'known');
        }
      }
      // A node that takes nothing (starting, stopping) answers as the single route does, so
      // clients and load balancers that retry on 503 need no special case.
      if (unavailable > 0 && unavailable === items.length) {
        throw new ApiError('unavailable', 'node is not accepting txs', undefined, retryAfterMs);
      }
      if (retryAfterMs !== undefined) reply.header('retry-after', Math.ceil(retryAfterMs / 1000));
      // Rendered to the response schema (SubmitTxsResponse) above, so its re-encoding is skipped.
      return sendJsonString(reply, batchAnswerJson(results, retryAfterMs));
    },
  });

  /**
   * A committed tx's answer is a function of where it committed: the block (by hash) and
   * its index there. So its ETag is taken from those instead of a digest of the body (a
   * digest on every first lookup cost about as much as the rest of the caching); weak,
   * because a later API version may render the same tx with more fields.
   */
  const txEtag = (blockHashHex: string, index: number): string => `W/"${blockHashHex.slice(0, 32)}.${index}"`;

  /** GET /v1/txs/:hash when the answer is not cached: pending, unknown, or committed (then cached). */
  async function txAnswer(hashHex: string, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const hash = hexToBytes(hashHex);
    // One point lookup for the location; the block's txs and tree come from txsCache.
    const loc = store.getTxLocation(hash);
    const b = loc === null ? null : await blockTxsAt(loc.height);
    const encoded = loc === null ? null : (b?.tx(loc.index) ?? null);
    const result = loc === null ? null : (b?.result(loc.index) ?? null);
    if (loc === null || b === null || encoded === null || result === null) {
      const st = await node.txStatus(hash);
      if (st.state === 'committed') {
        // Committed between the two reads: answer from the node's location.
        return reply.send({
          hash: hashHex,
          status: 'committed' as const,
          location: await locationJson(st.location),
        });
      }
      return reply.send({ hash: hashHex, status: st.state });
    }
    const proof = proofOf(b.tree, loc.index);
    const body: z.output<typeof s.TxResponse> = {
      hash: hashHex,
      status: 'committed',
      tx: txJson(decodeStored(encoded)) ?? undefined,
      encoded: toHex(encoded),
      location: { height: num(loc.height), index: loc.index, blockHash: b.hash },
      result: txResultJson(result),
      proof: {
        root: b.txRoot,
        leaf: hashHex,
        index: proof.index,
        leafCount: proof.leafCount,
        siblings: proof.siblings.map(toHex),
      },
    };
    // Built to the schema's type above, so the schema's re-encoding is skipped.
    const json = JSON.stringify(body);
    const etag = txEtag(b.hash, loc.index);
    if (txAnswers.entriesMax === 0 || !txAdmission.admit(hashHex)) {
      return sendImmutable(req.headers['if-none-match'], reply, { body: json, etag });
    }
    return sendImmutable(req.headers['if-none-match'], reply, txAnswers.set(hashHex, etag, json));
  }

  r.route({
    method: 'GET',
    url: routes.getTx.url,
    schema: schemaOf(routes.getTx),
    // Not async: a cache hit is answered without a promise and a microtask.
    handler: (req, reply) => {
      // The schema admits 0x and upper case; toHex writes lower case, so this is toHex(hash).
      const hashHex = strip0x((req.params as z.output<typeof s.HashParam>).hash).toLowerCase();
      const cached = txAnswers.get(hashHex);
      if (cached === undefined) return txAnswer(hashHex, req, reply);
      sendImmutable(req.headers['if-none-match'], reply, cached);
      return undefined;
    },
  });

  // ---- node --------------------------------------------------------------------------

  const nameOf = (id: number): string | null => node.validators[id]?.name ?? null;

  r.route({
    method: 'GET',
    url: routes.getStatus.url,
    schema: schemaOf(routes.getStatus),
    handler: async () => {
      const st = node.status();
      const ms = st.latestBlockTimeMs === null ? null : num(st.latestBlockTimeMs);
      return {
        chainId: node.chainId,
        genesisHash: toHex(node.genesis.hash),
        height: num(st.height),
        latestBlockHash: st.latestBlockHash === null ? null : toHex(st.latestBlockHash),
        latestBlockTime: ms === null ? null : new Date(ms).toISOString(),
        latestBlockTimeMs: ms,
        view: num(st.view),
        leader: st.leader,
        leaderName: nameOf(st.leader),
        selfId: node.selfId,
        selfName: nameOf(node.selfId),
        validatorCount: node.validators.length,
        f: node.f,
        peers: st.peers,
        syncing: st.syncing,
        ready: node.ready(),
        mempool: st.mempool,
        commitLatency: st.commitLatency,
      };
    },
  });

  r.route({
    method: 'GET',
    url: routes.getHealth.url,
    schema: schemaOf(routes.getHealth),
    handler: async () => ({ ok: true as const }),
  });

  r.route({
    method: 'GET',
    url: routes.getReady.url,
    schema: schemaOf(routes.getReady),
    handler: async () => {
      if (!node.ready()) {
        const st = node.status();
        throw new ApiError(
          'unavailable',
          st.syncing ? 'syncing' : 'not connected to a quorum',
          undefined,
          1000,
        );
      }
      return { ready: true as const };
    },
  });

  r.route({
    method: 'GET',
    url: routes.getValidators.url,
    schema: schemaOf(routes.getValidators),
    handler: async () => {
      const st = node.status();
      const connected = new Map(st.peers.map((p) => [p.id, p.connected]));
      return {
        f: node.f,
        leader: st.leader,
        validators: node.validators.map((v) => ({
          id: v.id,
          name: v.name,
          publicKey: toHex(v.publicKey),
          ...(v.peerId === undefined ? {} : { peerId: v.peerId }),
          ...(v.endpoints === undefined ? {} : { endpoints: v.endpoints }),
          connected: v.id === node.selfId ? null : (connected.get(v.id) ?? false),
        })),
      };
    },
  });

  r.route({
    method: 'GET',
    url: routes.getGenesis.url,
    schema: schemaOf(routes.getGenesis),
    handler: async (_req, reply) => sendJsonString(reply, JSON.stringify(node.genesis.document)),
  });

  // ---- blocks ------------------------------------------------------------------------

  r.route({
    method: 'GET',
    url: routes.getLatestBlock.url,
    schema: schemaOf(routes.getLatestBlock),
    handler: async (req, reply) => {
      const h = store.latestHeight();
      const rendered = h === 0n ? null : await blockAt(h);
      if (rendered === null) throw new ApiError('not-found', 'no block yet (height 0)');
      // Which block is latest changes: no ETag or immutable for this URL.
      return sendBlock(req, reply, rendered, true);
    },
  });

  /** GET /v1/blocks/:height after a blockCache miss. */
  async function blockByHeight(height: bigint, req: FastifyRequest, reply: FastifyReply) {
    const rendered = height === 0n ? null : await loadBlock(height);
    if (rendered === null) {
      throw new ApiError(
        'not-found',
        `no block at height ${height} (latest ${store.latestHeight()})`,
        'height',
      );
    }
    return sendBlock(req, reply, rendered);
  }

  r.route({
    method: 'GET',
    url: routes.getBlockByHeight.url,
    schema: schemaOf(routes.getBlockByHeight),
    // Not async: a cache hit is answered without a BigInt, a promise and a microtask.
    handler: (req, reply) => {
      const param = (req.params as z.output<typeof s.HeightParam>).height;
      // The schema admits up to 16 digits, beyond 2^53: those take the exact BigInt path.
      const n = Number(param);
      const cached = Number.isSafeInteger(n) ? blockCache.get(n) : undefined;
      if (cached === undefined) return blockByHeight(BigInt(param), req, reply);
      sendImmutable(req.headers['if-none-match'], reply, cached);
      return undefined;
    },
  });

  r.route({
    method: 'GET',
    url: routes.getBlockByHash.url,
    schema: schemaOf(routes.getBlockByHash),
    handler: async (req, reply) => {
      const hash = hexToBytes((req.params as z.output<typeof s.HashParam>).hash);
      const block = await store.getBlockByHash(hash);
      if (block === null) throw new ApiError('not-found', `no block with hash ${toHex(hash)}`, 'hash');
      return sendBlock(req, reply, await renderBlock(block));
    },
  });

  r.route({
    method: 'GET',
    url: routes.listBlocks.url,
    schema: schemaOf(routes.listBlocks),
    handler: async (req) => {
      const q = req.query as z.output<typeof s.PageQuery>;
      const limit = pageLimit(q.limit);
      const blocks = await store.listBlocks({
        ...(q.before === undefined ? {} : { beforeHeight: BigInt(q.before) }),
        limit,
      });
      const headers = blocks.map((b) => headerJson(b));
      const last = blocks[blocks.length - 1];
      const next =
        blocks.length === limit && last !== undefined && last.header.height > 1n
          ? num(last.header.height)
          : null;
      return { blocks: headers, next };
    },
  });

  // ---- accounts ----------------------------------------------------------------------

  r.route({
    method: 'GET',
    url: routes.getAccount.url,
    schema: schemaOf(routes.getAccount),
    handler: async (req) => {
      const address = hexToBytes((req.params as z.output<typeof s.AddressParam>).address);
      const acct = await store.getAccount(address);
      return {
        address: toHex(address),
        balance: acct.balance.toString(),
        nonce: acct.nonce.toString(),
        nextNonce: (acct.nonce + 1n).toString(),
      };
    },
  });

  r.route({
    method: 'GET',
    url: routes.listAccountTxs.url,
    schema: schemaOf(routes.listAccountTxs),
    handler: async (req) => {
      const address = hexToBytes((req.params as z.output<typeof s.AddressParam>).address);
      const q = req.query as z.output<typeof s.AccountTxsQuery>;
      const page = await store.listAccountTxs(address, {
        ...(q.cursor === undefined ? {} : { before: q.cursor }),
        limit: pageLimit(q.limit),
      });
      return {
        address: toHex(address),
        txs: page.items.map((t) => ({
          hash: toHex(t.hash),
          height: num(t.height),
          index: t.index,
          tx: txJson(decodeStored(t.tx)),
          result: txResultJson(t.result),
        })),
        next: page.nextCursor,
      };
    },
  });

  // ---- key-value ---------------------------------------------------------------------

  r.route({
    method: 'GET',
    url: routes.getKv.url,
    schema: schemaOf(routes.getKv),
    handler: async (req) => {
      const key = hexToBytes((req.params as z.output<typeof s.KvKeyParam>).key);
      const e = await store.getKv(key);
      if (e === null || e.value === null)
        throw new ApiError('not-found', `no value for key ${toHex(key)}`, 'key');
      return kvEntryJson(key, e);
    },
  });

  r.route({
    method: 'GET',
    url: routes.getKvHistory.url,
    schema: schemaOf(routes.getKvHistory),
    handler: async (req) => {
      const key = hexToBytes((req.params as z.output<typeof s.KvKeyParam>).key);
      const q = req.query as z.output<typeof s.KvHistoryQuery>;
      const entries = await store.kvHistory(key, { limit: pageLimit(q.limit) });
      return {
        key: toHex(key),
        entries: entries.map((e) => ({
          version: e.version.toString(),
          height: num(e.lastModifiedHeight),
          by: toHex(e.lastModifiedBy),
          value: e.value === null ? null : toHex(e.value),
          valueUtf8: e.value === null ? null : printableUtf8(e.value),
        })),
      };
    },
  });

  r.route({
    method: 'GET',
    url: routes.listKv.url,
    schema: schemaOf(routes.listKv),
    handler: async (req) => {
      const q = req.query as z.output<typeof s.KvListQuery>;
      const limit = pageLimit(q.limit);
      const page = await store.listKv({
        prefix: hexToBytes(q.prefix),
        ...(q.after === undefined ? {} : { after: hexToBytes(q.after) }),
        limit,
      });
      const entries = page.map(({ key, entry }) => kvEntryJson(key, entry));
      const last = entries[entries.length - 1];
      return { entries, next: entries.length === limit && last !== undefined ? last.key : null };
    },
  });
}
