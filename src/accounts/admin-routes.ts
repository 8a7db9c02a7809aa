// Administrators create accounts from the dashboard (the way in when BIZORA_SIGNUP=closed). The
// new account gets a generated password, shown once in this response, for its owner's first
// sign-in; the administrator passes it on.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { createAccount, findAccount, isEmail, isUniqueViolation, listAccounts, normalizeEmail } from './account-store.ts';
import { accountView, requireAdmin } from './dashboard-auth.ts';
import { generatePassword, hashPassword } from './passwords.ts';
import { AccountCreated, AccountList, NewAccount } from './schemas.ts';

const tags = ['Dashboard: administration'];

export function registerAccountAdminRoutes(app: FastifyInstance, deps: Deps): void {
  const r = typed(app);
  const listSchema = {
    tags,
    summary: 'Every account (administrators only)',
    response: { 200: AccountList, ...errorResponses('not_signed_in', 'admin_only') },
  };
  r.get('/admin/accounts', { schema: listSchema }, async (request) => {
    requireAdmin(request);
    return { data: (await listAccounts(deps.db, 500)).map(accountView) };
  });

  const createSchema = {
    tags,
    summary: 'Create an account with a generated password, shown once (administrators only)',
    body: NewAccount,
    response: {
      201: AccountCreated,
      ...errorResponses('not_signed_in', 'csrf_invalid', 'admin_only', 'invalid_request', 'invalid_text', 'email_taken'),
    },
  };
  r.post('/admin/accounts', { schema: createSchema }, async (request, reply) => {
    requireAdmin(request);
    const { body } = request;
    const email = normalizeEmail(body.email);
    if (!isEmail(email)) throw new ApiError('invalid_request', { param: 'email', message: 'Enter a valid email address.' });
    // An administrator may learn that an email is registered; the public sign-up never says.
    if (await findAccount(deps.db, email)) throw new ApiError('email_taken', { param: 'email' });
    const password = generatePassword();
    try {
      const account = await createAccount(deps.db, {
        email,
        name: body.name?.trim() || null,
        role: body.role ?? 'member',
        now: deps.clock.now(),
        passwordHash: await hashPassword(password),
      });
      return reply.code(201).send({ account: accountView(account), password });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ApiError('email_taken', { param: 'email' });
      throw err;
    }
  });
}
