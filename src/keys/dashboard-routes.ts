// Developers -> API Keys: list, create (the full key is in this one response only), revoke.
// Every query is scoped to the signed-in account.
import type { FastifyInstance } from 'fastify';
import { requireAccount } from '../accounts/dashboard-auth.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { limitsChange } from './key-limits.ts';
import { createKey, getKey, listKeys, MAX_KEY_NAME, normalizeKeyName, revokeKey, rotateKey, updateKey } from './key-store.ts';
import { keyView } from './key-view.ts';
import { ApiKeyView, CreatedKey, CreateKey, KeyLimitsChange, KeyList, KeyParams, RotatedKey, RotateKey } from './schemas.ts';

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
      const { limits, expiresAt } = limitsChange(request.body);
      const created = await createKey(deps.db, {
        accountId: account.id,
        name,
        mode: request.body.mode ?? 'live',
        now,
        limits,
        expiresAt: expiresAt ?? null,
      });
      return reply.code(201).send({ ...keyView(created, now), key: created.key });
    },
  );

  r.patch(
    '/keys/:id',
    {
      schema: {
        tags,
        summary: "Change a key's limits or expiry (only the fields given; null clears one)",
        params: KeyParams,
        body: KeyLimitsChange,
        response: {
          200: ApiKeyView,
          ...errorResponses('not_signed_in', 'csrf_invalid', 'key_not_found', 'invalid_request', 'invalid_text'),
        },
      },
    },
    async (request) => {
      const account = requireAccount(request);
      const { limits, expiresAt } = limitsChange(request.body);
      const key = await updateKey(deps.db, {
        keyId: request.params.id,
        accountId: account.id,
        limits,
        ...(expiresAt !== undefined ? { expiresAt } : {}),
      });
      if (!key) throw new ApiError('key_not_found');
      return keyView(key, deps.clock.now());
    },
  );

  r.post(
    '/keys/:id/rotate',
    {
      schema: {
        tags,
        summary: 'Give a key a new secret (in this response only); the former one works for grace_seconds (default a day)',
        params: KeyParams,
        body: RotateKey,
        response: { 200: RotatedKey, ...errorResponses('not_signed_in', 'csrf_invalid', 'key_not_found', 'invalid_text') },
      },
    },
    async (request) => {
      const account = requireAccount(request);
      const now = deps.clock.now();
      const graceMs = (request.body?.grace_seconds ?? 86_400) * 1000;
      const rotated = await rotateKey(deps.db, { keyId: request.params.id, accountId: account.id, graceMs, now });
      if (!rotated) throw new ApiError('key_not_found');
      const key = await getKey(deps.db, rotated.id);
      if (!key) throw new ApiError('key_not_found');
      return { ...keyView(key, now), key: rotated.key };
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
