import { createReadStream, existsSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError } from '../http/problem';

/** Where the console is served; the browser policy gives these paths the console's CSP. */
export const CONSOLE_PREFIX = '/console';

export function isConsolePath(url: string): boolean {
  const p = url.split('?')[0];
  return p === CONSOLE_PREFIX || p.startsWith(`${CONSOLE_PREFIX}/`);
}

/**
 * The types a Vite build of the console produces. A fixed table rather than a MIME database: an
 * unknown extension is served as an opaque download, never as something a browser would run.
 */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.geojson': 'application/geo+json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Vite names built assets `<name>-<content hash>.<ext>` under assets/: they never change, so cache them for good. */
const HASHED_ASSET = /^assets\/(?:.+\/)?[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

/**
 * The default build directory: `dist/console` of the project (the console's Vite build writes it),
 * found from this module whether it runs compiled (dist/apps/token-ledger/src/console) or from
 * source (tests), by walking up to the directory with package.json.
 */
export function defaultConsoleDir(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve('dist', 'console');
    dir = parent;
  }
  return path.join(dir, 'dist', 'console');
}

/**
 * GET /console and /console/*: the console's built files. A small handler rather than
 * @fastify/static (not among the dependencies): paths are resolved inside the build directory only
 * (`..`, dot files, backslashes, NUL and symlinks leading out are refused), a deep link without a
 * file extension gets index.html (client-side routing), hashed assets are cached as immutable and
 * index.html is revalidated on every load, so a new build shows at once.
 */
export function registerConsole(fastify: FastifyInstance, directory: string): void {
  const root = path.resolve(directory);
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const rest = (request.params as { '*'?: string })['*'] ?? '';
    await serve(root, rest, reply);
  };
  fastify.get(CONSOLE_PREFIX, handler);
  fastify.get(`${CONSOLE_PREFIX}/*`, handler);
}

async function serve(root: string, rest: string, reply: FastifyReply): Promise<void> {
  const realRoot = await realpath(root).catch(() => undefined);
  const index = realRoot && (await fileStat(path.join(realRoot, 'index.html')));
  if (!realRoot || !index) {
    return problem(reply, new ProblemError(404, 'Not Found', `the console is not built (no index.html in ${root}): run npm run build`, { hint: 'npm run build' }));
  }
  const segments = rest.split('/').filter((s) => s !== '');
  if (segments.some((s) => s.startsWith('.') || s.includes('\\') || s.includes('\0'))) {
    return problem(reply, new ProblemError(404, 'Not Found', 'no such console file'));
  }
  const relative = segments.join('/');
  const last = segments.at(-1) ?? '';
  if (relative === '' || relative === 'index.html' || path.extname(last) === '') {
    return send(reply, path.join(realRoot, 'index.html'), index.size, 'no-cache');
  }
  const candidate = path.resolve(realRoot, relative);
  // Symlinks are followed only when they stay inside the build directory.
  const real = await realpath(candidate).catch(() => undefined);
  const file = real && inside(realRoot, real) ? await fileStat(real) : undefined;
  if (!real || !file) return problem(reply, new ProblemError(404, 'Not Found', 'no such console file'));
  const cache = HASHED_ASSET.test(relative) ? 'public, max-age=31536000, immutable' : 'no-cache';
  return send(reply, real, file.size, cache);
}

function inside(root: string, candidate: string): boolean {
  return candidate.startsWith(root + path.sep);
}

async function fileStat(file: string): Promise<{ size: number } | undefined> {
  const s = await stat(file).catch(() => undefined);
  return s?.isFile() ? { size: s.size } : undefined;
}

function send(reply: FastifyReply, file: string, size: number, cacheControl: string): FastifyReply {
  return reply
    .header('content-type', CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream')
    .header('content-length', String(size))
    .header('cache-control', cacheControl)
    .send(createReadStream(file));
}

function problem(reply: FastifyReply, error: ProblemError): FastifyReply {
  return reply.status(error.status).header('cache-control', 'no-store').type('application/problem+json').send(error.toJSON());
}
