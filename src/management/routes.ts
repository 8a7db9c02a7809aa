// The management API, /v1/admin/, for the operator's own programs: accounts (create, list, get
// with balance), keys (create with limits, list per account, get, update, rotate, revoke),
// credit grants (an Idempotency-Key is required: the same key answers with the first grant and
// grants nothing), usage per account, key, model and day. Authenticated by management keys only.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findAccount, pageAccounts } from '../accounts/account-store.ts';
import { createOperatorAccount } from '../accounts/admin-routes.ts';
import { accountView } from '../accounts/dashboard-auth.ts';
import { AccountView } from '../accounts/schemas.ts';
import { grantCreditIdempotently } from '../billing/ledger.ts';
import { centsToMicros, exactCents, floorCents } from '../billing/pricing.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { limitsChange } from '../keys/key-limits.ts';
import { createKey, getKey, listKeys, normalizeKeyName, type PublicKey, revokeKey, rotateKey, updateKey } from '../keys/key-store.ts';
import { keyView } from '../keys/key-view.ts';
import { DAY_MS, dayOf } from '../usage/usage-store.ts';
import { findAdminKey } from './admin-keys.ts';
import {
  AccountListQuery,
  CreatedManagedKey,
  Credit,
  CreditHeaders,
  CreditResult,
  IdParams,
  KeyChange,
  ManagedAccountList,
  ManagedKey,
  ManagedKeyList,
  NewManagedAccount,
  NewManagedKey,
  Rotated,
  Rotation,
  UsageQuery,
  UsageRows,
} from './schemas.ts';

const tags = ['Management API'];
/** The management API's 404 for a key: any account's key may be named here. */
const noSuchKey = () => new ApiError('key_not_found', { message: 'No such API key.' });
const security = [{ adminKey: [] }];
const AUTH = ['invalid_admin_key'] as const;

/** A key as the management API shows it: as the dashboard does, with its account. */
export const managedKey = (k: PublicKey, now: number) => ({ ...keyView(k, now), account_id: k.account_id });

export async function managementPlugin(app: FastifyInstance, opts: { deps: Deps }): Promise<void> {
  const { deps } = opts;
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const auth = request.headers.authorization;
    const m = typeof auth === 'string' ? /^bearer\s+(\S+)$/i.exec(auth.trim()) : null;
    const key = m?.[1] ? await findAdminKey(deps.db, m[1]) : undefined;
    if (!key) throw new ApiError('invalid_admin_key');
    // Last used to the minute: not a database write on every request.
    const now = deps.clock.now();
    if (key.last_used_at === null || now - key.last_used_at >= 60_000) {
      await deps.db.updateTable('admin_keys').set({ last_used_at: now }).where('id', '=', key.id).execute();
    }
  });
  const r = typed(app);
  const account = async (id: string) => {
    const a = await findAccount(deps.db, id);
    if (!a) throw new ApiError('account_not_found');
    return a;
  };
  const key = async (id: string) => {
    const k = await getKey(deps.db, id);
    if (!k) throw noSuchKey();
    return k;
  };

  r.post(
    '/accounts',
    {
      schema: {
        tags,
        security,
        summary: 'Create an account',
        body: NewManagedAccount,
        response: { 201: AccountView, ...errorResponses(...AUTH, 'invalid_request', 'email_taken') },
      },
    },
    async (request, reply) => {
      const { email, name } = request.body;
      const a = await createOperatorAccount(deps.db, {
        email,
        name: name ?? null,
        role: 'member',
        now: deps.clock.now(),
        passwordHash: null,
      });
      return reply.code(201).send(accountView(a));
    },
  );
  r.get(
    '/accounts',
    {
      schema: {
        tags,
        security,
        summary: 'Accounts, in pages of up to 100 (next_after: the next page)',
        querystring: AccountListQuery,
        response: { 200: ManagedAccountList, ...errorResponses(...AUTH) },
      },
    },
    async (request) => {
      const limit = Math.min(100, Math.max(1, Number(request.query.limit ?? 100)));
      const rows = await pageAccounts(deps.db, limit + 1, request.query.after);
      const page = rows.slice(0, limit);
      return { data: page.map(accountView), next_after: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
  );
  r.get(
    '/accounts/:id',
    {
      schema: {
        tags,
        security,
        summary: 'One account, with its balance',
        params: IdParams,
        response: { 200: AccountView, ...errorResponses(...AUTH, 'account_not_found') },
      },
    },
    async (request) => accountView(await account(request.params.id)),
  );

  r.post(
    '/accounts/:id/keys',
    {
      schema: {
        tags,
        security,
        summary: 'Create a key for the account, with its limits (the full key is in this response only)',
        params: IdParams,
        body: NewManagedKey,
        response: { 201: CreatedManagedKey, ...errorResponses(...AUTH, 'account_not_found', 'invalid_request') },
      },
    },
    async (request, reply) => {
      const a = await account(request.params.id);
      const name = normalizeKeyName(request.body.name);
      if (!name) throw new ApiError('invalid_request', { param: 'name', message: 'Give the key a name of 1 to 100 characters.' });
      const now = deps.clock.now();
      const k = await createKey(deps.db, {
        accountId: a.id,
        name,
        mode: request.body.mode ?? 'live',
        now,
        expiresAt: request.body.expires_at ?? null,
        limits: limitsChange(request.body).limits,
      });
      return reply.code(201).send({ ...managedKey(k, now), key: k.key });
    },
  );
  r.get(
    '/accounts/:id/keys',
    {
      schema: {
        tags,
        security,
        summary: "The account's keys, newest first",
        params: IdParams,
        response: { 200: ManagedKeyList, ...errorResponses(...AUTH, 'account_not_found') },
      },
    },
    async (request) => {
      const a = await account(request.params.id);
      const now = deps.clock.now();
      return { data: (await listKeys(deps.db, a.id)).map((k) => managedKey(k, now)) };
    },
  );
  r.get(
    '/keys/:id',
    {
      schema: {
        tags,
        security,
        summary: 'One key',
        params: IdParams,
        response: { 200: ManagedKey, ...errorResponses(...AUTH, 'key_not_found') },
      },
    },
    async (request) => managedKey(await key(request.params.id), deps.clock.now()),
  );
  r.patch(
    '/keys/:id',
    {
      schema: {
        tags,
        security,
        summary: "Change a key's limits or expiry (only the fields given; null clears one)",
        params: IdParams,
        body: KeyChange,
        response: { 200: ManagedKey, ...errorResponses(...AUTH, 'key_not_found', 'invalid_request') },
      },
    },
    async (request) => {
      const { limits, expiresAt } = limitsChange(request.body);
      const k = await updateKey(deps.db, { keyId: request.params.id, limits, ...(expiresAt !== undefined ? { expiresAt } : {}) });
      if (!k) throw noSuchKey();
      return managedKey(k, deps.clock.now());
    },
  );
  r.post(
    '/keys/:id/rotate',
    {
      schema: {
        tags,
        security,
        summary: 'Give the key a new secret (in this response only); the former one works for grace_seconds',
        params: IdParams,
        body: Rotation,
        response: { 200: Rotated, ...errorResponses(...AUTH, 'key_not_found') },
      },
    },
    async (request) => {
      const graceMs = (request.body?.grace_seconds ?? 86_400) * 1000;
      const rotated = await rotateKey(deps.db, { keyId: request.params.id, graceMs, now: deps.clock.now() });
      if (!rotated) throw new ApiError('key_not_found', { message: 'No such active API key.' });
      return { id: rotated.id, key: rotated.key, previous_valid_until: rotated.previous_valid_until };
    },
  );
  r.post(
    '/keys/:id/revoke',
    {
      schema: {
        tags,
        security,
        summary: 'Revoke a key, at once',
        params: IdParams,
        response: { 200: ManagedKey, ...errorResponses(...AUTH, 'key_not_found') },
      },
    },
    async (request) => {
      const k = await revokeKey(deps.db, { keyId: request.params.id, now: deps.clock.now() });
      if (!k) throw noSuchKey();
      return managedKey(k, deps.clock.now());
    },
  );

  r.post(
    '/accounts/:id/credits',
    {
      schema: {
        tags,
        security,
        summary: 'Grant prepaid credit; the Idempotency-Key header is required (the same key returns the first grant and grants nothing)',
        params: IdParams,
        headers: CreditHeaders,
        body: Credit,
        response: {
          201: CreditResult,
          ...errorResponses(...AUTH, 'account_not_found', 'idempotency_key_required', 'idempotency_key_reused', 'invalid_request'),
        },
      },
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      if (idempotencyKey === undefined) throw new ApiError('idempotency_key_required');
      const a = await account(request.params.id);
      const r = await grantCreditIdempotently(deps.ledger, {
        accountId: a.id,
        micros: centsToMicros(request.body.cents),
        reason: request.body.reason?.trim() || 'Granted through the management API',
        now: deps.clock.now(),
        idempotencyKey,
      });
      if (!r.ok) throw new ApiError(r.reason === 'key_reused' ? 'idempotency_key_reused' : 'account_not_found');
      if (r.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send({
        account_id: r.accountId,
        granted_cents: exactCents(r.micros),
        balance_cents: floorCents(r.balanceAfterMicros),
        replayed: r.replayed,
      });
    },
  );

  r.get(
    '/usage',
    {
      schema: {
        tags,
        security,
        summary: 'Requests, tokens and cost per UTC day, account, key and model (at most 366 days, 10,000 rows)',
        querystring: UsageQuery,
        response: { 200: UsageRows, ...errorResponses(...AUTH, 'invalid_request') },
      },
    },
    async (request) => {
      const q = request.query;
      const to = q.to ? Number(q.to) : deps.clock.now();
      const from = q.from ? Number(q.from) : to - 30 * DAY_MS;
      if (from >= to || to - from > 366 * DAY_MS) {
        throw new ApiError('invalid_request', { param: 'from', message: 'from must be before to, and at most 366 days before it.' });
      }
      const day = dayOf;
      let query = deps.db
        .selectFrom('usage_records')
        .where('created_at', '>=', from)
        .where('created_at', '<', to)
        .select((eb) => [
          day.as('day'),
          'account_id',
          'key_id',
          'model',
          eb.fn.countAll<number>().as('requests'),
          eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
          eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
          eb.fn.sum<number>('cost_micros').as('cost_micros'),
        ])
        .groupBy([day, 'account_id', 'key_id', 'model'])
        .orderBy(day)
        .orderBy('account_id')
        .orderBy('key_id')
        .orderBy('model')
        .limit(10_000);
      if (q.account_id) query = query.where('account_id', '=', q.account_id);
      if (q.key_id) query = query.where('key_id', '=', q.key_id);
      if (q.model) query = query.where('model', '=', q.model);
      const rows = await query.execute();
      return {
        data: rows.map((row) => ({
          day: new Date(Number(row.day) * DAY_MS).toISOString().slice(0, 10),
          account_id: row.account_id,
          key_id: row.key_id,
          model: row.model,
          requests: Number(row.requests),
          prompt_tokens: Number(row.prompt_tokens),
          completion_tokens: Number(row.completion_tokens),
          cost_cents: exactCents(Number(row.cost_micros)),
        })),
      };
    },
  );
}
