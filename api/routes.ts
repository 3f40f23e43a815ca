// The route table: every JSON route declared once, with its schemas. The server
// registers a handler per entry (api/handlers.ts), the OpenAPI document is generated
// from the same schemas, and the client (api/client.ts) derives its paths and types
// from it, so the three cannot drift apart.
import type { z } from 'zod';
import * as s from './schemas.js';

export interface RouteDef {
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  tags: string[];
  params?: z.ZodType;
  querystring?: z.ZodType;
  body?: z.ZodType;
  /** Success responses by status code; errors are always schemas.ErrorBody. */
  response: Record<number, z.ZodType>;
  /** Error statuses this route can answer with (documented in OpenAPI). */
  errors: number[];
}

const common = [400, 429];

export const routes = {
  submitTx: {
    method: 'POST',
    url: '/v1/txs',
    summary: 'Submit a signed transaction (async: accepted into the mempool; commit: wait for its block)',
    tags: ['txs'],
    body: s.SubmitTxBody,
    response: { 200: s.SubmitTxResponse, 202: s.SubmitTxResponse },
    errors: [...common, 409, 413, 415, 422, 503],
  },
  submitTxs: {
    method: 'POST',
    url: '/v1/txs/batch',
    summary:
      'Submit many signed transactions in one request (async): one result per tx, in order, each a status or a typed error',
    tags: ['txs'],
    body: s.SubmitTxsBody,
    response: { 200: s.SubmitTxsResponse },
    errors: [...common, 413, 415, 503],
  },
  getTx: {
    method: 'GET',
    url: '/v1/txs/:hash',
    summary: 'A transaction by hash: pending, committed (with location, result and Merkle proof) or unknown',
    tags: ['txs'],
    params: s.HashParam,
    response: { 200: s.TxResponse },
    errors: common,
  },
  getStatus: {
    method: 'GET',
    url: '/v1/status',
    summary: 'Chain and node status: height, latest block, view, leader, peers, syncing',
    tags: ['node'],
    response: { 200: s.StatusResponse },
    errors: [429],
  },
  getHealth: {
    method: 'GET',
    url: '/v1/health',
    summary: 'Liveness: the process answers',
    tags: ['node'],
    response: { 200: s.HealthResponse },
    errors: [],
  },
  getReady: {
    method: 'GET',
    url: '/v1/ready',
    summary: 'Readiness: caught up and connected (503 unavailable otherwise)',
    tags: ['node'],
    response: { 200: s.ReadyResponse },
    errors: [503],
  },
  getLatestBlock: {
    method: 'GET',
    url: '/v1/blocks/latest',
    summary: 'The latest block with its txs, results and commit certificate',
    tags: ['blocks'],
    response: { 200: s.BlockResponse },
    errors: [404, 429],
  },
  getBlockByHeight: {
    method: 'GET',
    url: '/v1/blocks/:height',
    summary: 'A block by height',
    tags: ['blocks'],
    params: s.HeightParam,
    response: { 200: s.BlockResponse },
    errors: [...common, 404],
  },
  getBlockByHash: {
    method: 'GET',
    url: '/v1/blocks/by-hash/:hash',
    summary: 'A block by hash',
    tags: ['blocks'],
    params: s.HashParam,
    response: { 200: s.BlockResponse },
    errors: [...common, 404],
  },
  listBlocks: {
    method: 'GET',
    url: '/v1/blocks',
    summary: 'Block headers, newest first, below an optional height cursor',
    tags: ['blocks'],
    querystring: s.PageQuery,
    response: { 200: s.BlockListResponse },
    errors: common,
  },
  getAccount: {
    method: 'GET',
    url: '/v1/accounts/:address',
    summary: 'Balance and nonce of an account',
    tags: ['accounts'],
    params: s.AddressParam,
    response: { 200: s.AccountResponse },
    errors: common,
  },
  listAccountTxs: {
    method: 'GET',
    url: '/v1/accounts/:address/txs',
    summary: 'Transactions from or to an account, newest first',
    tags: ['accounts'],
    params: s.AddressParam,
    querystring: s.AccountTxsQuery,
    response: { 200: s.AccountTxsResponse },
    errors: common,
  },
  getKv: {
    method: 'GET',
    url: '/v1/kv/:key',
    summary: "A key's current value, version and last-modified height",
    tags: ['kv'],
    params: s.KvKeyParam,
    response: { 200: s.KvEntryJson },
    errors: [...common, 404],
  },
  getKvHistory: {
    method: 'GET',
    url: '/v1/kv/:key/history',
    summary: "A key's past versions, newest first",
    tags: ['kv'],
    params: s.KvKeyParam,
    querystring: s.KvHistoryQuery,
    response: { 200: s.KvHistoryResponse },
    errors: common,
  },
  listKv: {
    method: 'GET',
    url: '/v1/kv',
    summary: 'Keys by prefix, in key order, paginated',
    tags: ['kv'],
    querystring: s.KvListQuery,
    response: { 200: s.KvListResponse },
    errors: common,
  },
  getValidators: {
    method: 'GET',
    url: '/v1/validators',
    summary: 'The validator set with connectivity as seen from this node',
    tags: ['node'],
    response: { 200: s.ValidatorsResponse },
    errors: [429],
  },
  getGenesis: {
    method: 'GET',
    url: '/v1/genesis',
    summary: 'The genesis document as loaded by this node',
    tags: ['node'],
    response: {},
    errors: [429],
  },
} as const satisfies Record<string, RouteDef>;

export type Routes = typeof routes;
export type RouteName = keyof Routes;
