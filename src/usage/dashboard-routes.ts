// Usage: requests, tokens and cost per day (filterable by key and model), the recent requests,
// and one request's record (the same view /v1/generation gives an API key).
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { requireAccount } from '../accounts/dashboard-auth.ts';
import { exactCents } from '../billing/pricing.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { listKeys } from '../keys/key-store.ts';
import { generationView } from './generation-view.ts';
import { GenerationParams, GenerationView, UsageQuery, UsageView } from './schemas.ts';
import { findUsage } from './usage-store.ts';

const DAY_MS = 86_400_000;
// Integer division on both databases: the UTC day number. A literal, not a parameter, so that
// PostgreSQL sees the SELECT and GROUP BY expressions as the same.
const dayOf = sql<number>`created_at / ${sql.lit(DAY_MS)}`;

const tags = ['Dashboard: usage'];

export function registerUsageRoutes(app: FastifyInstance, deps: Deps): void {
  const r = typed(app);
  const usageSchema = {
    tags,
    summary: 'Requests, tokens and cost per day (by key and model), and the 50 most recent requests',
    querystring: UsageQuery,
    response: { 200: UsageView, ...errorResponses('not_signed_in', 'invalid_request', 'invalid_text') },
  };
  r.get('/usage', { schema: usageSchema }, async (request) => {
    const account = requireAccount(request);
    const q = request.query;
    const days = Math.min(365, Math.max(1, Number(q.days ?? 30)));
    const now = deps.clock.now();
    const firstDay = Math.floor(now / DAY_MS) - days + 1;
    let base = deps.db.selectFrom('usage_records').where('account_id', '=', account.id);
    if (q.key_id) base = base.where('key_id', '=', q.key_id);
    if (q.model) base = base.where('model', '=', q.model);

    const daily = await base
      .where('created_at', '>=', firstDay * DAY_MS)
      .select((eb) => [
        dayOf.as('day'),
        eb.fn.countAll<number>().as('requests'),
        eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
        eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
        eb.fn.sum<number>('cost_micros').as('cost_micros'),
      ])
      .groupBy(dayOf)
      .execute();
    const byDay = new Map(daily.map((d) => [Number(d.day), d]));
    const series = Array.from({ length: days }, (_, i) => {
      const day = firstDay + i;
      const d = byDay.get(day);
      return {
        date: new Date(day * DAY_MS).toISOString().slice(0, 10),
        requests: Number(d?.requests ?? 0),
        prompt_tokens: Number(d?.prompt_tokens ?? 0),
        completion_tokens: Number(d?.completion_tokens ?? 0),
        cost_cents: exactCents(Number(d?.cost_micros ?? 0)),
      };
    });
    const recent = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(50).execute();
    const keys = await listKeys(deps.db, account.id);
    return {
      daily: series,
      recent: recent.map(generationView),
      keys: keys.map((k) => ({ id: k.id, name: k.name, preview: k.preview, mode: k.mode })),
      models: deps.models.list().map((m) => m.id),
    };
  });

  const generationSchema = {
    tags,
    summary: "One request's record (the view GET /v1/generation gives)",
    params: GenerationParams,
    response: { 200: GenerationView, ...errorResponses('not_signed_in', 'generation_not_found', 'invalid_text') },
  };
  r.get('/generations/:id', { schema: generationSchema }, async (request) => {
    const account = requireAccount(request);
    const u = await findUsage(deps.db, account.id, request.params.id);
    if (!u) throw new ApiError('generation_not_found');
    return generationView(u);
  });
}
