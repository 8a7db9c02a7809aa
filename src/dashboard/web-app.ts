// The dashboard web app (web/, React + Vite): built into web/dist when the sources are newer
// than the build, and served at / by the same server as the API, with the browser security
// headers (helmet) that the dashboard's routes carry and /v1 does not.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { PROJECT_ROOT } from '../lib/project-root.ts';

export const WEB_ROOT = join(PROJECT_ROOT, 'web');
const DIST = join(WEB_ROOT, 'dist');
const INDEX = join(DIST, 'index.html');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules') continue;
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export const webBuildIsStale = (): boolean => !existsSync(INDEX) || statSync(INDEX).mtimeMs < newestSource(WEB_ROOT);

/** Builds the web app if it is missing or older than its sources. Returns whether it built. */
export async function ensureWebBuild(log: (msg: string) => void = () => {}): Promise<boolean> {
  if (!webBuildIsStale()) return false;
  log('building the dashboard (web/ -> web/dist)…');
  const started = Date.now();
  // In a child process: Vite and its bundler would otherwise stay in the server's memory for
  // the rest of its life.
  const vite = join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  await promisify(execFile)(process.execPath, [vite, 'build', '--config', join(WEB_ROOT, 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: PROJECT_ROOT,
  });
  log(`dashboard built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return true;
}

/**
 * Registers helmet's headers on the routes of the calling plugin (the dashboard API, the web
 * app), never on /v1: API clients are not browsers, and /v1 is the measured hot path. The CSP
 * allows only this origin: the built app has no inline script or style (React sets styles
 * through the DOM, which CSP allows), and its icon is a data: URL. HSTS and upgrading requests
 * to https only when the public URL is https: on plain http they would break the dashboard.
 */
export async function registerSecurityHeaders(app: FastifyInstance, config: Pick<Config, 'publicUrl'>): Promise<void> {
  const https = !!config.publicUrl?.startsWith('https:');
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        imgSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    hsts: https ? { maxAge: 31_536_000, includeSubDomains: false } : false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
}

export async function webAppPlugin(app: FastifyInstance, opts: { config: Pick<Config, 'publicUrl'> }): Promise<void> {
  await registerSecurityHeaders(app, opts.config);
  if (!existsSync(INDEX)) {
    app.get('/', async (_request, reply) =>
      reply.type('text/html').send('<!doctype html><p>The dashboard has not been built. Run <code>npm start</code>, which builds it.</p>'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: DIST,
    // One route per built file (no catch-all): unknown paths stay JSON 404s.
    wildcard: false,
    setHeaders(res, path) {
      // Vite puts a content hash in asset names, so they never change; index.html always may.
      res.header('cache-control', path.includes(`${join('dist', 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
