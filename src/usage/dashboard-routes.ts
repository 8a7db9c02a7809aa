// Usage: requests, tokens and cost per day (filterable by key and model), the recent requests,
// and one request's record (the same view /v1/generation gives an API key).
import type { FastifyInstance } from 'fastify';
import { requireAccount } from '../accounts/dashboard-auth.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { listKeys } from '../keys/key-store.ts';
import { exactCents } from '../lib/money.ts';
import { generationView } from './generation-view.ts';
import { GenerationParams, GenerationView, UsageQuery, UsageView } from './schemas.ts';
import { DAY_MS, dailyTotals, findUsage, recentUsage } from './usage-store.ts';

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
    const firstDay = Math.floor(deps.clock.now() / DAY_MS) - days + 1;
    const filter = { accountId: account.id, keyId: q.key_id, model: q.model };
    const byDay = new Map((await dailyTotals(deps.db, filter, firstDay)).map((d) => [d.day, d]));
    const series = Array.from({ length: days }, (_, i) => {
      const day = firstDay + i;
      const d = byDay.get(day);
      return {
        date: new Date(day * DAY_MS).toISOString().slice(0, 10),
        requests: d?.requests ?? 0,
        prompt_tokens: d?.promptTokens ?? 0,
        completion_tokens: d?.completionTokens ?? 0,
        cost_cents: exactCents(d?.costMicros ?? 0),
      };
    });
    const recent = await recentUsage(deps.db, filter, 50);
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
