// The dashboard API under /dashboard/api: session-cookie authentication, CSRF protection on
// every state-changing request, browser security headers, no NUL characters in any input, and
// the routes each capability offers the web app.
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import type { FastifyInstance } from 'fastify';
import { registerAccountAdminRoutes } from '../accounts/admin-routes.ts';
import { registerSessionRoutes } from '../accounts/session-routes.ts';
import { findSessionAccount, SESSION_COOKIE } from '../accounts/sessions.ts';
import { registerBillingRoutes } from '../billing/dashboard-routes.ts';
import { grantCredit } from '../billing/ledger.ts';
import { centsToMicros } from '../billing/pricing.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { registerKeyRoutes } from '../keys/dashboard-routes.ts';
import { registerUsageRoutes } from '../usage/dashboard-routes.ts';
import { registerSecurityHeaders } from './web-app.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Where a NUL character is in the request's parameters, query or body (as a parameter name), or
 * null. PostgreSQL refuses NUL in text, and no email, name, id or filter has a use for one.
 * Iterative: a body nested thousands deep must not overflow the stack.
 */
export function findNul(parts: Record<string, unknown>): string | null {
  // A name past 200 characters stops growing: an error message must not echo a huge body.
  const child = (path: string, part: string) => (path.length > 200 ? path : (path + part).slice(0, 201));
  const stack: Array<[string, unknown]> = Object.entries(parts).map(([k, v]) => [k, v]);
  while (stack.length) {
    const [path, value] = stack.pop() as [string, unknown];
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) stack.push([child(path, `[${i}]`), v]);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k.includes('\u0000')) return path;
        stack.push([child(path ? `${path}.` : '', k), v]);
      }
    }
  }
  return null;
}

export async function dashboardApiPlugin(app: FastifyInstance, opts: { deps: Deps }): Promise<void> {
  const { deps } = opts;
  await registerSecurityHeaders(app, deps.config);
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
  // Before the route's own schema: a NUL anywhere is refused the same way on every route.
  app.addHook('preValidation', async (request) => {
    const at = findNul({ '': { ...(request.params as object), ...(request.query as object) }, body: request.body });
    if (at !== null) {
      const param = at.replace(/^body\.?/, '') || null;
      throw new ApiError('invalid_request', {
        param,
        message: `Invalid value for '${param ?? 'body'}': must not contain a NUL character.`,
      });
    }
  });
  // The dashboard's answers are per-user: never cached by browsers or proxies.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  const signupCredit = centsToMicros(deps.config.signupCreditCents);
  registerSessionRoutes(app, deps, {
    onSignedUp: async (accountId, now) => {
      if (signupCredit > 0)
        await deps.ledger.run((s) => grantCredit(s, { accountId, micros: signupCredit, reason: 'Sign-up credit', now }));
    },
  });
  registerAccountAdminRoutes(app, deps);
  registerKeyRoutes(app, deps);
  registerBillingRoutes(app, deps);
  registerUsageRoutes(app, deps);
}
