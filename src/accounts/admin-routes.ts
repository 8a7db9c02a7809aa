// Administrators create accounts from the dashboard (the way in when BIZORA_SIGNUP=closed). The
// new account gets a generated password, shown once in this response, for its owner's first
// sign-in; the administrator passes it on.
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { accountView, requireAdmin } from '../dashboard/session.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { createAccount, findAccount, isEmail, isUniqueViolation, normalizeEmail } from './account-store.ts';
import { generatePassword, hashPassword } from './passwords.ts';

const NewAccount = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  name: Type.Optional(Type.String({ maxLength: 100 })),
  role: Type.Optional(Type.Union([Type.Literal('member'), Type.Literal('admin')])),
});

export function registerAccountAdminRoutes(app: FastifyInstance, deps: Deps): void {
  app.post('/admin/accounts', { schema: { body: NewAccount } }, async (request, reply) => {
    requireAdmin(request);
    const body = request.body as Static<typeof NewAccount>;
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
