// The dashboard API under /dashboard/api: session-cookie authentication, CSRF protection on
// every state-changing request, and the routes each capability offers the web app.
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import type { FastifyInstance } from 'fastify';
import { registerSessionRoutes } from '../accounts/session-routes.ts';
import { findSessionAccount, SESSION_COOKIE } from '../accounts/sessions.ts';
import { registerBillingRoutes } from '../billing/dashboard-routes.ts';
import type { Deps } from '../deps.ts';
import { registerKeyRoutes } from '../keys/dashboard-routes.ts';
import { registerUsageRoutes } from '../usage/dashboard-routes.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export async function dashboardApiPlugin(app: FastifyInstance, opts: { deps: Deps }): Promise<void> {
  const { deps } = opts;
  await app.register(fastifyCookie);
  await app.register(fastifyCsrf, {
    cookieKey: 'bizora_csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure: deps.config.cookieSecure },
    getToken: (request) => request.headers['x-csrf-token'] as string | undefined,
  });
  app.decorateRequest('account', null);

  app.addHook('onRequest', async (request) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) request.account = (await findSessionAccount(deps.db, token, deps.clock.now())) ?? null;
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (SAFE_METHODS.has(request.method)) return done();
    app.csrfProtection(request, reply, done);
  });
  // The dashboard's answers are per-user: never cached by browsers or proxies.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  registerSessionRoutes(app, deps);
  registerKeyRoutes(app, deps);
  registerBillingRoutes(app, deps);
  registerUsageRoutes(app, deps);
}
