// GET /v1/models, /v1/models/{id}, /v1/key, /v1/generation: read-only views for the calling key.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { balanceCents, findAccount } from '../accounts/account-store.ts';
import { exactCents } from '../billing/pricing.ts';
import type { ModelConfig } from '../config.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, typed } from '../http/openapi.ts';
import { allowsModel } from '../keys/key-limits.ts';
import type { AuthContext } from '../keys/verify.ts';
import { unixSeconds } from '../lib/clock.ts';
import { generationView } from '../usage/generation-view.ts';
import { GenerationQuery, GenerationView } from '../usage/schemas.ts';
import { findUsage } from '../usage/usage-store.ts';
import { keyLimitsView } from './key-limits-view.ts';
import { modelNotAllowed } from './model-route.ts';
import { KeyInfo, ModelList, ModelObject, ModelParams, ModelPathParams } from './schemas.ts';

// Models have no creation date of their own; this is the platform's first release.
const MODELS_CREATED = 1764547200;

const modelObject = (m: ModelConfig) => ({
  id: m.id,
  object: 'model' as const,
  created: MODELS_CREATED,
  owned_by: 'bizora',
  kind: m.kind,
  ...(m.kind === 'embedding' ? { dimensions: m.dimensions } : {}),
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

const tags = ['API'];
const MAX_MODEL_ID_LENGTH = 100;
const security = [{ apiKey: [] }];
const KEY_ERRORS = ['missing_api_key', 'invalid_api_key', 'conflicting_api_keys'] as const;

export function registerInfoRoutes(app: FastifyInstance, deps: Deps): void {
  const r = typed(app);
  r.get(
    '/models',
    {
      schema: { tags, security, summary: 'The models this server serves', response: { 200: ModelList, ...errorResponses(...KEY_ERRORS) } },
    },
    async (request) => {
      const { key } = authOf(request);
      return {
        object: 'list' as const,
        data: deps.models
          .list()
          .filter((m) => allowsModel(key, m.id))
          .map(modelObject),
      };
    },
  );

  r.get(
    '/models/:id',
    {
      schema: {
        tags,
        security,
        summary: 'One model',
        description: 'An id with a slash in it (`openai/gpt-4o-mini`) may be sent as it is or encoded (`openai%2Fgpt-4o-mini`).',
        params: ModelParams,
        response: { 200: ModelObject, ...errorResponses(...KEY_ERRORS, 'model_not_found', 'permission_denied') },
      },
    },
    async (request) => oneModel(request.params.id, authOf(request)),
  );
  // An id with a slash ("openai/gpt-4o-mini"), as the Python SDK sends it: unencoded it spans
  // path segments (encoded as %2F, the route above matches it, decoded).
  r.get(
    '/models/*',
    {
      schema: {
        hide: true,
        params: ModelPathParams,
        response: { 200: ModelObject, ...errorResponses(...KEY_ERRORS, 'model_not_found', 'permission_denied', 'uri_too_long') },
      },
    },
    async (request) => {
      const id = request.params['*'];
      // The same bound as any path parameter (Fastify's maxParamLength): a 414, never echoed.
      if (id.length > MAX_MODEL_ID_LENGTH) throw new ApiError('uri_too_long');
      return oneModel(id, authOf(request));
    },
  );

  function oneModel(id: string, auth: AuthContext) {
    const model = deps.models.list().find((m) => m.id === id);
    if (model && !allowsModel(auth.key, id)) throw modelNotAllowed(id);
    if (!model)
      throw new ApiError('model_not_found', {
        param: 'model',
        message: `The model '${id}' does not exist or you do not have access to it.`,
      });
    return modelObject(model);
  }

  r.get(
    '/key',
    {
      schema: {
        tags,
        security,
        summary: 'The calling key, its limits and its account balance',
        response: { 200: KeyInfo, ...errorResponses(...KEY_ERRORS) },
      },
    },
    async (request) => {
      const { key } = authOf(request);
      const account = await findAccount(deps.db, key.account_id);
      if (!account) throw new ApiError('invalid_api_key');
      const cents = balanceCents(account);
      return {
        object: 'api_key' as const,
        id: key.id,
        name: key.name,
        mode: key.mode,
        preview: key.preview,
        created: unixSeconds(key.created_at),
        last_used: seconds(key.last_used_at),
        expires_at: seconds(key.expires_at),
        limits: await keyLimitsView(deps, key),
        account: {
          id: account.id,
          balance_cents: cents.balance_cents,
          available_balance_cents: cents.available_cents,
        },
      };
    },
  );

  r.get(
    '/generation',
    {
      schema: {
        tags,
        security,
        summary: "One request's usage record and cost, by its completion id or x-request-id",
        querystring: GenerationQuery,
        response: { 200: GenerationView, ...errorResponses(...KEY_ERRORS, 'invalid_request', 'invalid_text', 'generation_not_found') },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const u = await findUsage(deps.db, auth.key.account_id, request.query.id);
      if (!u) throw new ApiError('generation_not_found', { param: 'id' });
      return generationView(u);
    },
  );
}
