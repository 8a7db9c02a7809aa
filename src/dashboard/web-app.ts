// The dashboard web app (web/, React + Vite), built by `npm run build` into dist/web and served
// at / by the same server as the API, with the browser security headers (helmet) that the
// dashboard's routes carry and /v1 does not. The server never builds it (scripts/build.mjs does).
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { PROJECT_ROOT } from '../lib/project-root.ts';

export const WEB_DIST = join(PROJECT_ROOT, 'dist', 'web');
const INDEX = join(WEB_DIST, 'index.html');
const ASSETS = `${join(WEB_DIST, 'assets')}${sep}`;

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
      reply
        .type('text/html')
        .send('<!doctype html><p>The dashboard has not been built. Run <code>npm run build</code> (<code>npm start</code> does).</p>'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: WEB_DIST,
    // One route per built file (no catch-all): unknown paths stay JSON 404s.
    wildcard: false,
    setHeaders(res, path) {
      // Vite puts a content hash in asset names, so they never change; index.html always may.
      res.header('cache-control', path.startsWith(ASSETS) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
