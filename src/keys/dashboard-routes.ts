// Developers -> API Keys: list, create (the full key is in this one response only), revoke.
// Every query is scoped to the signed-in account.
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { requireAccount } from '../dashboard/session.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { createKey, listKeys, MAX_KEY_NAME, normalizeKeyName, type PublicKey, revokeKey } from './key-store.ts';

const CreateKey = Type.Object({
  name: Type.String({ maxLength: MAX_KEY_NAME * 2 }),
  mode: Type.Optional(Type.Union([Type.Literal('live'), Type.Literal('test')])),
});
const KeyParams = Type.Object({ id: Type.String() });

const keyView = (k: PublicKey) => ({
  id: k.id,
  name: k.name,
  preview: k.preview,
  mode: k.mode,
  created_at: k.created_at,
  last_used_at: k.last_used_at,
  revoked_at: k.revoked_at,
  status: k.revoked_at !== null ? 'revoked' : k.expires_at !== null && k.expires_at <= Date.now() ? 'expired' : 'active',
});

export function registerKeyRoutes(app: FastifyInstance, deps: Deps): void {
  app.get('/keys', async (request) => {
    const account = requireAccount(request);
    await deps.lastUsed.flush();
    return { data: (await listKeys(deps.db, account.id)).map(keyView) };
  });

  app.post('/keys', { schema: { body: CreateKey } }, async (request, reply) => {
    const account = requireAccount(request);
    const body = request.body as Static<typeof CreateKey>;
    const name = normalizeKeyName(body.name);
    if (!name)
      throw new ApiError('invalid_request', {
        param: 'name',
        message: `Give the key a descriptive name (1 to ${MAX_KEY_NAME} characters).`,
      });
    const created = await createKey(deps.db, { accountId: account.id, name, mode: body.mode ?? 'live', now: deps.clock.now() });
    return reply.code(201).send({ ...keyView(created), key: created.key });
  });

  app.post('/keys/:id/revoke', { schema: { params: KeyParams } }, async (request) => {
    const account = requireAccount(request);
    const { id } = request.params as Static<typeof KeyParams>;
    const key = await revokeKey(deps.db, { keyId: id, accountId: account.id, now: deps.clock.now() });
    if (!key) throw new ApiError('key_not_found');
    return keyView(key);
  });
}
