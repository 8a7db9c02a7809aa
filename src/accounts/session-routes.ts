// Sign-up, sign-in, sign-out and "who am I" for the dashboard.
//
// Sign-up never tells whether an email is registered: for an email that has an account it is a
// sign-in (the right password signs in, anything else gets exactly the answer of a failed
// sign-in, after the same one password check), and it goes through the same throttle. Sign-ups
// are limited per address, and refused altogether with BIZORA_SIGNUP=closed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../config.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { createAccount, findAccount, findPasswordHash, isEmail, isUniqueViolation, normalizeEmail } from './account-store.ts';
import { accountView, requireAccount } from './dashboard-auth.ts';
import { DUMMY_HASH, hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
import { MaybeSignedIn, SessionView, SignedIn, SignedOut } from './schemas.ts';
import { createSession, deleteSession, SESSION_COOKIE } from './sessions.ts';
import { type SigninAttempt, SigninThrottle, type ThrottleLimits } from './signin-throttle.ts';

const Credentials = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
  name: Type.Optional(Type.String({ maxLength: 100 })),
});

/**
 * The base URL Getting started shows: BIZORA_PUBLIC_URL, else the address this server was told
 * to listen on (a wildcard address shown as the loopback one) and the port it listens on. Never
 * the request's Host header, which any client can set.
 */
export function apiBaseUrl(config: Pick<Config, 'publicUrl' | 'host' | 'port'>, listeningPort: number | undefined): string {
  if (config.publicUrl) return `${config.publicUrl.replace(/\/+$/, '')}/v1`;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' || config.host === '[::]' ? 'localhost' : config.host;
  const port = listeningPort ?? config.port;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}${port === 80 ? '' : `:${port}`}/v1`;
}

/** Secure cookies as configured, or (auto without a public URL) when this request came over https. */
export const cookieIsSecure = (config: Config, request: FastifyRequest): boolean =>
  config.cookieSecure || (config.cookieSecurePerRequest && request.protocol === 'https');

export type SessionRouteOptions = {
  limits?: ThrottleLimits;
  /** Called once a new account exists, before its session starts (the sign-up credit is granted here). */
  onSignedUp?: (accountId: string, now: number) => Promise<void>;
};

export function registerSessionRoutes(app: FastifyInstance, deps: Deps, opts: SessionRouteOptions = {}): void {
  const throttle = new SigninThrottle(deps.clock, opts.limits);

  async function startSession(request: FastifyRequest, reply: FastifyReply, accountId: string) {
    const token = await createSession(deps.db, accountId, deps.clock.now(), deps.config.sessionTtlMs);
    reply.setCookie(SESSION_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: cookieIsSecure(deps.config, request),
      maxAge: Math.floor(deps.config.sessionTtlMs / 1000),
    });
  }

  /** The throttle's verdict for this email from this client; a refusal is the 429. */
  function admit(email: string, request: FastifyRequest): SigninAttempt {
    const verdict = throttle.begin(email, request.ip);
    if (!verdict.allowed) throw new ApiError('too_many_attempts', { headers: { 'retry-after': String(verdict.retryAfterSeconds) } });
    return verdict.attempt;
  }

  // The port actually listened on (BIZORA_PORT=0 picks a free one).
  const listeningPort = (): number | undefined => {
    const a = app.server.address();
    return a && typeof a === 'object' ? a.port : undefined;
  };

  /** One password check (against a dummy hash when there is no account: same answer, same time). */
  async function signIn(
    request: FastifyRequest,
    reply: FastifyReply,
    row: { id: string; password_hash: string | null } | undefined,
    password: string,
    attempt: SigninAttempt,
  ) {
    const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_HASH);
    if (!row?.password_hash || !ok) {
      attempt.failed();
      throw new ApiError('invalid_credentials');
    }
    attempt.succeeded();
    await startSession(request, reply, row.id);
    const account = await findAccount(deps.db, row.id);
    return { account: account ? accountView(account) : null };
  }

  const r = typed(app);
  const tags = ['Dashboard: session'];
  const sessionSchema = {
    tags,
    summary: 'Who is signed in, the CSRF token for POSTs, and what sign-up offers',
    response: { 200: SessionView, ...errorResponses() },
  };
  r.get('/session', { schema: sessionSchema }, async (request, reply) => ({
    account: request.account ? accountView(request.account) : null,
    csrf_token: reply.generateCsrf({ secure: cookieIsSecure(deps.config, request) }),
    signup: deps.config.signup,
    signup_credit_cents: deps.config.signupCreditCents,
    api_base_url: apiBaseUrl(deps.config, listeningPort()),
  }));

  const CREDENTIAL_ERRORS = ['csrf_invalid', 'invalid_request', 'invalid_text', 'invalid_credentials', 'too_many_attempts'] as const;
  const signupSchema = {
    tags,
    summary: 'Create an account and sign in (an existing email is a sign-in: the answer never tells which emails exist)',
    body: Credentials,
    response: { 200: MaybeSignedIn, 201: SignedIn, ...errorResponses(...CREDENTIAL_ERRORS, 'signup_closed', 'rate_limited') },
  };
  r.post('/signup', { schema: signupSchema }, async (request, reply) => {
    if (deps.config.signup === 'closed') throw new ApiError('signup_closed');
    const allowed = throttle.signup(request.ip);
    if (!allowed.allowed) {
      throw new ApiError('rate_limited', {
        message: 'Too many sign-ups from this address. Try again later.',
        headers: { 'retry-after': String(allowed.retryAfterSeconds) },
      });
    }
    const { body } = request;
    const email = normalizeEmail(body.email);
    if (!isEmail(email)) throw new ApiError('invalid_request', { param: 'email', message: 'Enter a valid email address.' });
    if (body.password.length < MIN_PASSWORD_LENGTH) {
      throw new ApiError('invalid_request', {
        param: 'password',
        message: `Use a password of at least ${MIN_PASSWORD_LENGTH} characters.`,
      });
    }
    const attempt = admit(email, request);
    const existing = await findPasswordHash(deps.db, email);
    if (existing) return signIn(request, reply, existing, body.password, attempt);

    const passwordHash = await hashPassword(body.password);
    const now = deps.clock.now();
    let account: Awaited<ReturnType<typeof createAccount>>;
    try {
      account = await createAccount(deps.db, { email, name: body.name?.trim() || null, now, passwordHash });
    } catch (err) {
      // A concurrent sign-up took the email first: answered like any existing email.
      if (!isUniqueViolation(err)) throw err;
      attempt.failed();
      throw new ApiError('invalid_credentials');
    }
    attempt.succeeded();
    await opts.onSignedUp?.(account.id, now);
    await startSession(request, reply, account.id);
    const fresh = await findAccount(deps.db, account.id);
    return reply.code(201).send({ account: fresh ? accountView(fresh) : accountView(account) });
  });

  const signinSchema = {
    tags,
    summary: 'Sign in (sets the session cookie)',
    body: Credentials,
    response: { 200: MaybeSignedIn, ...errorResponses(...CREDENTIAL_ERRORS) },
  };
  r.post('/signin', { schema: signinSchema }, async (request, reply) => {
    const { body } = request;
    const email = normalizeEmail(body.email);
    const attempt = admit(email, request);
    return signIn(request, reply, await findPasswordHash(deps.db, email), body.password, attempt);
  });

  r.post(
    '/signout',
    { schema: { tags, summary: 'Sign out', response: { 200: SignedOut, ...errorResponses('csrf_invalid') } } },
    async (request, reply) => {
      const token = request.cookies[SESSION_COOKIE];
      if (token) await deleteSession(deps.db, token);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { signed_out: true as const };
    },
  );

  r.get(
    '/me',
    { schema: { tags, summary: 'The signed-in account and its balance', response: { 200: SignedIn, ...errorResponses('not_signed_in') } } },
    async (request) => ({ account: accountView(requireAccount(request)) }),
  );
}
