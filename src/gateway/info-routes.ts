// GET /v1/models, /v1/models/{id}, /v1/key, /v1/generation: read-only views for the calling key.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { balanceCents } from '../accounts/account-store.ts';
import { exactCents } from '../billing/pricing.ts';
import type { ModelConfig } from '../config.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import type { AuthContext } from '../keys/verify.ts';
import { unixSeconds } from '../lib/clock.ts';
import { generationView } from '../usage/generation-view.ts';
import { findUsage } from '../usage/usage-store.ts';
import { GenerationQuery, ModelParams } from './schemas.ts';

// Models have no creation date of their own; this is the platform's first release.
const MODELS_CREATED = 1764547200;

const modelObject = (m: ModelConfig) => ({
  id: m.id,
  object: 'model' as const,
  created: MODELS_CREATED,
  owned_by: 'bizora',
  context_window: m.context_window,
  max_output_tokens: m.max_output_tokens,
  pricing: {
    input_per_million_cents: exactCents(m.price.input_per_million_micros),
    output_per_million_cents: exactCents(m.price.output_per_million_micros),
    request_cents: exactCents(m.price.request_micros),
  },
});

const authOf = (request: FastifyRequest): AuthContext => {
  if (!request.auth) throw new ApiError('missing_api_key');
  return request.auth;
};

const seconds = (ms: number | null) => (ms === null ? null : unixSeconds(ms));

export function registerInfoRoutes(app: FastifyInstance, deps: Deps): void {
  app.get('/models', async () => ({ object: 'list', data: deps.models.list().map(modelObject) }));

  app.get('/models/:id', { schema: { params: ModelParams } }, async (request) => {
    const { id } = request.params as Static<typeof ModelParams>;
    const model = deps.models.list().find((m) => m.id === id);
    if (!model)
      throw new ApiError('model_not_found', {
        param: 'model',
        message: `The model '${id}' does not exist or you do not have access to it.`,
      });
    return modelObject(model);
  });

  app.get('/key', async (request) => {
    const { key } = authOf(request);
    const account = await deps.db
      .selectFrom('accounts')
      .select(['id', 'balance_micros', 'held_micros'])
      .where('id', '=', key.account_id)
      .executeTakeFirstOrThrow();
    const cents = balanceCents(account);
    return {
      object: 'api_key',
      id: key.id,
      name: key.name,
      mode: key.mode,
      preview: key.preview,
      created: seconds(key.created_at),
      last_used: seconds(key.last_used_at),
      expires_at: seconds(key.expires_at),
      limits: { rate_limit: null, spend_limit_cents: null },
      account: {
        id: account.id,
        balance_cents: cents.balance_cents,
        available_balance_cents: cents.available_cents,
      },
    };
  });

  app.get('/generation', { schema: { querystring: GenerationQuery } }, async (request) => {
    const { id } = request.query as Static<typeof GenerationQuery>;
    const auth = authOf(request);
    const u = await findUsage(deps.db, auth.key.account_id, id);
    if (!u) throw new ApiError('generation_not_found', { param: 'id' });
    return generationView(u);
  });
}
