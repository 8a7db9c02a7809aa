// Developers -> API Keys: list, create (the full key is in this one response only), revoke.
// Every query is scoped to the signed-in account.
import type { FastifyInstance } from 'fastify';
import { requireAccount } from '../accounts/dashboard-auth.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { createKey, listKeys, MAX_KEY_NAME, normalizeKeyName, type PublicKey, revokeKey } from './key-store.ts';
import { ApiKeyView, CreatedKey, CreateKey, KeyList, KeyParams } from './schemas.ts';

const keyView = (k: PublicKey, now: number) => ({
  id: k.id,
  name: k.name,
  preview: k.preview,
  mode: k.mode,
  created_at: k.created_at,
  last_used_at: k.last_used_at,
  revoked_at: k.revoked_at,
  status:
    k.revoked_at !== null
      ? ('revoked' as const)
      : k.expires_at !== null && k.expires_at <= now
        ? ('expired' as const)
        : ('active' as const),
});

const tags = ['Dashboard: API keys'];

export function registerKeyRoutes(app: FastifyInstance, deps: Deps): void {
  const r = typed(app);
  r.get(
    '/keys',
    { schema: { tags, summary: "The account's keys, newest first", response: { 200: KeyList, ...errorResponses('not_signed_in') } } },
    async (request) => {
      const account = requireAccount(request);
      await deps.lastUsed.flush();
      const now = deps.clock.now();
      return { data: (await listKeys(deps.db, account.id)).map((k) => keyView(k, now)) };
    },
  );

  r.post(
    '/keys',
    {
      schema: {
        tags,
        summary: 'Create a key (the full key is in this response only)',
        body: CreateKey,
        response: { 201: CreatedKey, ...errorResponses('not_signed_in', 'csrf_invalid', 'invalid_request', 'invalid_text') },
      },
    },
    async (request, reply) => {
      const account = requireAccount(request);
      const name = normalizeKeyName(request.body.name);
      if (!name)
        throw new ApiError('invalid_request', {
          param: 'name',
          message: `Give the key a descriptive name (1 to ${MAX_KEY_NAME} characters).`,
        });
      const now = deps.clock.now();
      const created = await createKey(deps.db, { accountId: account.id, name, mode: request.body.mode ?? 'live', now });
      return reply.code(201).send({ ...keyView(created, now), key: created.key });
    },
  );

  r.post(
    '/keys/:id/revoke',
    {
      schema: {
        tags,
        summary: 'Revoke a key, at once',
        params: KeyParams,
        response: { 200: ApiKeyView, ...errorResponses('not_signed_in', 'csrf_invalid', 'key_not_found', 'invalid_text') },
      },
    },
    async (request) => {
      const account = requireAccount(request);
      const key = await revokeKey(deps.db, { keyId: request.params.id, accountId: account.id, now: deps.clock.now() });
      if (!key) throw new ApiError('key_not_found');
      return keyView(key, deps.clock.now());
    },
  );
}
