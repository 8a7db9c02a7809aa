// Billing: the balance and the ledger, newest first, paginated by entry id; administrators can
// see every account and grant credit to any of them. A grant sent with an Idempotency-Key
// header is made once: the same key again (a retry, a double click) answers with the first
// grant and grants nothing (header Idempotent-Replayed: true); the same key with another account
// or amount is a 409. The dashboard sends a fresh key with every new grant.
import type { FastifyInstance } from 'fastify';
import { type Static, Type } from 'typebox';
import { findAccount } from '../accounts/account-store.ts';
import { accountView, requireAccount, requireAdmin } from '../dashboard/session.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { grantCredit, grantCreditIdempotently } from './ledger.ts';
import { centsToMicros, exactCents, floorCents } from './pricing.ts';

const LedgerQuery = Type.Object({
  before: Type.Optional(Type.String()),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
});
const Grant = Type.Object({
  account: Type.String({ minLength: 1 }),
  cents: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
});
/** Printable ASCII, up to 255 characters: a UUID, or whatever a client retries with. */
export const IDEMPOTENCY_KEY_PATTERN = '^[ -~]{1,255}$';
const GrantHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ pattern: IDEMPOTENCY_KEY_PATTERN })) });

export function registerBillingRoutes(app: FastifyInstance, deps: Deps): void {
  app.get('/billing', { schema: { querystring: LedgerQuery } }, async (request) => {
    const me = requireAccount(request);
    const q = request.query as Static<typeof LedgerQuery>;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 20)));
    let query = deps.db
      .selectFrom('ledger_entries')
      .selectAll()
      .where('account_id', '=', me.id)
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (q.before) query = query.where('id', '<', q.before);
    const rows = await query.execute();
    const account = (await findAccount(deps.db, me.id)) ?? me;
    return {
      account: accountView(account),
      entries: rows.slice(0, limit).map((e) => ({
        id: e.id,
        kind: e.kind,
        amount_cents: exactCents(e.amount_micros),
        balance_after_cents: exactCents(e.balance_after_micros),
        held_cents: e.hold_micros === null ? null : exactCents(e.hold_micros),
        released_cents: e.hold_micros === null ? null : exactCents(e.hold_micros + Math.min(0, e.amount_micros)),
        request_id: e.request_id,
        reason: e.reason,
        created_at: e.created_at,
      })),
      next_before: rows.length > limit ? rows[limit - 1]?.id : null,
    };
  });

  app.get('/admin/accounts', async (request) => {
    requireAdmin(request);
    const rows = await deps.db
      .selectFrom('accounts')
      .select(['id', 'email', 'name', 'role', 'balance_micros', 'held_micros', 'created_at'])
      .orderBy('created_at', 'asc')
      .limit(500)
      .execute();
    return { data: rows.map(accountView) };
  });

  app.post('/admin/grants', { schema: { body: Grant, headers: GrantHeaders } }, async (request, reply) => {
    const admin = requireAdmin(request);
    const body = request.body as Static<typeof Grant>;
    const idempotencyKey = (request.headers as Static<typeof GrantHeaders>)['idempotency-key'];
    const target = await findAccount(deps.db, body.account);
    if (!target) throw new ApiError('account_not_found');
    const grant = {
      accountId: target.id,
      micros: centsToMicros(body.cents),
      reason: body.reason?.trim() || `Granted by ${admin.email}`,
      now: deps.clock.now(),
    };
    if (idempotencyKey === undefined) {
      const balance = await deps.ledger.run((s) => grantCredit(s, grant));
      if (balance === null) throw new ApiError('account_not_found');
      return reply.code(201).send({ account_id: target.id, granted_cents: body.cents, balance_cents: floorCents(balance) });
    }
    const r = await grantCreditIdempotently(deps.ledger, { ...grant, idempotencyKey });
    if (!r.ok) throw new ApiError(r.reason === 'key_reused' ? 'idempotency_key_reused' : 'account_not_found');
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return reply
      .code(201)
      .send({ account_id: r.accountId, granted_cents: exactCents(r.micros), balance_cents: floorCents(r.balanceAfterMicros) });
  });
}
