// Billing: the balance and the ledger, newest first, paginated by entry id; administrators can
// grant credit to any account. A grant sent with an Idempotency-Key
// header is made once: the same key again (a retry, a double click) answers with the first
// grant and grants nothing (header Idempotent-Replayed: true); the same key with another account
// or amount is a 409. The dashboard sends a fresh key with every new grant.
import type { FastifyInstance } from 'fastify';
import { findAccount } from '../accounts/account-store.ts';
import { accountView, requireAccount, requireAdmin } from '../accounts/dashboard-auth.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { grantCredit, grantCreditIdempotently } from './ledger.ts';
import { listLedgerEntries } from './ledger-history.ts';
import { centsToMicros, exactCents, floorCents } from './pricing.ts';
import { BillingView, Grant, GrantHeaders, GrantResult, LedgerQuery } from './schemas.ts';

const tags = ['Dashboard: billing'];

export function registerBillingRoutes(app: FastifyInstance, deps: Deps): void {
  const r = typed(app);
  const billingSchema = {
    tags,
    summary: 'The balance and the ledger, newest first (paginated by `before`)',
    querystring: LedgerQuery,
    response: { 200: BillingView, ...errorResponses('not_signed_in', 'invalid_request', 'invalid_text') },
  };
  r.get('/billing', { schema: billingSchema }, async (request) => {
    const me = requireAccount(request);
    const q = request.query;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 20)));
    const rows = await listLedgerEntries(deps.db, me.id, { before: q.before, limit: limit + 1 });
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
      next_before: rows.length > limit ? (rows[limit - 1]?.id ?? null) : null,
    };
  });

  const grantSchema = {
    tags: ['Dashboard: administration'],
    summary: 'Grant prepaid credit to an account (administrators only); idempotent with an Idempotency-Key',
    body: Grant,
    headers: GrantHeaders,
    response: {
      201: GrantResult,
      ...errorResponses(
        'not_signed_in',
        'csrf_invalid',
        'admin_only',
        'invalid_request',
        'invalid_text',
        'account_not_found',
        'idempotency_key_reused',
      ),
    },
  };
  r.post('/admin/grants', { schema: grantSchema }, async (request, reply) => {
    const admin = requireAdmin(request);
    const { body } = request;
    const idempotencyKey = request.headers['idempotency-key'];
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
