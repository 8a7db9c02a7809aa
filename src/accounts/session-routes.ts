// Sign-up, sign-in, sign-out and "who am I" for the dashboard.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type Static, Type } from 'typebox';
import { grantCredit } from '../billing/ledger.ts';
import { centsToMicros } from '../billing/pricing.ts';
import { accountView, requireAccount } from '../dashboard/session.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { createAccount, findAccount, isEmail, normalizeEmail } from './account-store.ts';
import { DUMMY_HASH, hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
import { createSession, deleteSession, SESSION_COOKIE } from './sessions.ts';
import { SigninThrottle } from './signin-throttle.ts';

const Credentials = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
  name: Type.Optional(Type.String({ maxLength: 100 })),
});
type CredentialsBody = Static<typeof Credentials>;

export function registerSessionRoutes(app: FastifyInstance, deps: Deps): void {
  const throttle = new SigninThrottle(deps.clock.now);

  async function startSession(reply: FastifyReply, accountId: string) {
    const token = await createSession(deps.db, accountId, deps.clock.now(), deps.config.sessionTtlMs);
    reply.setCookie(SESSION_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: deps.config.cookieSecure,
      maxAge: Math.floor(deps.config.sessionTtlMs / 1000),
    });
  }

  app.get('/session', async (request, reply) => ({
    account: request.account ? accountView(request.account) : null,
    csrf_token: reply.generateCsrf(),
    signup_credit_cents: deps.config.signupCreditCents,
    // The base URL the Getting started examples show: the configured public URL, or the one
    // this browser reached us at.
    api_base_url: `${deps.config.publicUrl?.replace(/\/+$/, '') ?? `${request.protocol}://${request.host}`}/v1`,
  }));

  app.post('/signup', { schema: { body: Credentials } }, async (request, reply) => {
    const body = request.body as CredentialsBody;
    const email = normalizeEmail(body.email);
    if (!isEmail(email)) throw new ApiError('invalid_request', { param: 'email', message: 'Enter a valid email address.' });
    if (body.password.length < MIN_PASSWORD_LENGTH) {
      throw new ApiError('invalid_request', {
        param: 'password',
        message: `Use a password of at least ${MIN_PASSWORD_LENGTH} characters.`,
      });
    }
    if (await findAccount(deps.db, email)) throw new ApiError('email_taken');
    const passwordHash = await hashPassword(body.password);
    const now = deps.clock.now();
    // The first account on an empty database administers the platform.
    const { n } = await deps.db
      .selectFrom('accounts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const account = await createAccount(deps.db, {
      email,
      name: body.name?.trim() || null,
      now,
      passwordHash,
      role: Number(n) === 0 ? 'admin' : 'member',
    }).catch((err) => {
      // Two sign-ups racing for the same email: the unique index decides.
      throw /unique|duplicate/i.test(String((err as Error).message)) ? new ApiError('email_taken') : err;
    });
    if (deps.config.signupCreditCents > 0) {
      await deps.ledger.run((s) =>
        grantCredit(s, { accountId: account.id, micros: centsToMicros(deps.config.signupCreditCents), reason: 'Sign-up credit', now }),
      );
    }
    await startSession(reply, account.id);
    const fresh = await findAccount(deps.db, account.id);
    return reply.code(201).send({ account: fresh ? accountView(fresh) : accountView(account) });
  });

  app.post('/signin', { schema: { body: Credentials } }, async (request, reply) => {
    const body = request.body as CredentialsBody;
    const email = normalizeEmail(body.email);
    const keys = [`email:${email}`, `ip:${request.ip}`] as const;
    const verdict = throttle.check(...keys);
    if ('blockedForSeconds' in verdict) {
      throw new ApiError('too_many_attempts', { headers: { 'retry-after': String(verdict.blockedForSeconds) } });
    }
    if (verdict.delayMs) await new Promise((r) => setTimeout(r, verdict.delayMs));
    const row = await deps.db.selectFrom('accounts').select(['id', 'password_hash']).where('email', '=', email).executeTakeFirst();
    // Unknown emails are checked against a dummy hash: same answer, same time.
    const ok = await verifyPassword(body.password, row?.password_hash ?? DUMMY_HASH);
    if (!row?.password_hash || !ok) {
      throttle.fail([...keys]);
      throw new ApiError('invalid_credentials');
    }
    throttle.succeed([...keys]);
    await startSession(reply, row.id);
    const account = await findAccount(deps.db, row.id);
    return { account: account ? accountView(account) : null };
  });

  app.post('/signout', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) await deleteSession(deps.db, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { signed_out: true };
  });

  app.get('/me', async (request) => ({ account: accountView(requireAccount(request)) }));
}
