// The explorer page: plain HTML/CSS/JS modules under api/explorer/, read once at start
// from the source tree (tsc does not copy them; the repo root is found by walking up
// from this compiled file to package.json) and served from memory with ETags.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'api'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`repo root (package.json) not found above ${from}`);
    dir = up;
  }
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export function loadExplorerAssets(dir = join(repoRoot(), 'api', 'explorer')): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }
  if (!assets.has('index.html')) throw new Error(`explorer index.html missing in ${dir}`);
  return assets;
}

/** GET / (the page) and GET /explorer/<file> (its scripts and styles). */
export function registerExplorer(app: FastifyInstance, assets: Map<string, Asset>): void {
  const serve = (name: string) => {
    const a = assets.get(name);
    return a;
  };
  app.get('/', { schema: { hide: true } }, (req, reply) => {
    const a = serve('index.html')!;
    return send(req.headers['if-none-match'], a, reply);
  });
  app.get<{ Params: { file: string } }>('/explorer/:file', { schema: { hide: true } }, (req, reply) => {
    const a = serve(req.params.file);
    if (a === undefined) {
      return reply
        .code(404)
        .send({ error: { code: 'not-found', message: `no explorer asset ${req.params.file}` } });
    }
    return send(req.headers['if-none-match'], a, reply);
  });
}

function send(
  ifNoneMatch: string | undefined,
  a: Asset,
  reply: import('fastify').FastifyReply,
): import('fastify').FastifyReply {
  reply.header('etag', a.etag).header('cache-control', 'no-cache').type(a.type);
  if (ifNoneMatch === a.etag) return reply.code(304).send();
  return reply.send(a.body);
}
