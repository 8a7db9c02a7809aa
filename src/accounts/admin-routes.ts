// Administrators create accounts from the dashboard (the way in when BIZORA_SIGNUP=closed). The
// new account gets a generated password, shown once in this response, for its owner's first
// sign-in; the administrator passes it on.
import type { FastifyInstance } from 'fastify';
import type { Db } from '../db/connection.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import {
  createAccount,
  findAccount,
  isEmail,
  isUniqueViolation,
  listAccounts,
  normalizeEmail,
  type PublicAccount,
} from './account-store.ts';
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
    const email = operatorEmail(body.email);
    // Checked before the password is hashed (its cost is for accounts that will exist).
    if (await findAccount(deps.db, email)) throw new ApiError('email_taken', { param: 'email' });
    const password = generatePassword();
    const account = await createOperatorAccount(deps.db, {
      email,
      name: body.name ?? null,
      role: body.role ?? 'member',
      now: deps.clock.now(),
      passwordHash: await hashPassword(password),
    });
    return reply.code(201).send({ account: accountView(account), password });
  });
}

/** An email an operator gives for a new account, normalised; a 400 when it is not one. */
function operatorEmail(raw: string): string {
  const email = normalizeEmail(raw);
  if (!isEmail(email)) throw new ApiError('invalid_request', { param: 'email', message: 'Enter a valid email address.' });
  return email;
}

/**
 * An account an operator creates (Administration -> Accounts, the management API): the email
 * checked, the name trimmed, an email registered already a 409. An operator may learn that an
 * email is registered; the public sign-up never says.
 */
export async function createOperatorAccount(
  db: Db,
  input: { email: string; name: string | null; role: 'admin' | 'member'; now: number; passwordHash: string | null },
): Promise<PublicAccount> {
  try {
    return await createAccount(db, { ...input, email: operatorEmail(input.email), name: input.name?.trim() || null });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ApiError('email_taken', { param: 'email' });
    throw err;
  }
}
