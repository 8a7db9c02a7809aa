// The model a /v1 request names, for the calling key (sk_test_ keys get the simulator), and of
// the kind the route serves: a 404 for a model that does not exist, a 400 for one of the other
// kind (an embedding model asked for a chat completion, or the other way round).
import type { ModelRoute } from '../backends/model-registry.ts';
import type { Deps } from '../deps.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import { allowsModel } from '../keys/key-limits.ts';
import type { AuthContext } from '../keys/verify.ts';

const WHAT: Record<'chat' | 'embedding', string> = { chat: 'chat completions', embedding: 'embeddings' };
const WHERE: Record<'chat' | 'embedding', string> = { chat: '/v1/chat/completions', embedding: '/v1/embeddings' };

/** The 403 for a model outside the key's allowlist. */
export const modelNotAllowed = (modelId: string) =>
  new ApiError('permission_denied', { param: 'model', message: `This API key may not use the model '${modelId}'.` });

export function modelFor(deps: Deps, modelId: string, auth: AuthContext, kind: 'chat' | 'embedding'): ModelRoute {
  const route = deps.models.resolve(modelId, auth.key.mode);
  if (route && !allowsModel(auth.key, modelId)) {
    deps.metrics?.refused('model');
    throw modelNotAllowed(modelId);
  }
  if (!route) {
    throw new ApiError('model_not_found', {
      param: 'model',
      message: `The model '${modelId}' does not exist or you do not have access to it.`,
    });
  }
  if (route.model.kind !== kind) {
    throw new ApiError('invalid_request', {
      param: 'model',
      message: `The model '${modelId}' does not make ${WHAT[kind]}: it is ${route.model.kind === 'chat' ? 'a chat' : 'an embedding'} model (use ${WHERE[route.model.kind]}).`,
    });
  }
  return route;
}

/** What a route that calls a model can answer besides its 200 (for the OpenAPI document). */
export const MODEL_CALL_ERRORS = [
  'invalid_json',
  'invalid_request',
  'json_too_deep',
  'invalid_text',
  'missing_api_key',
  'invalid_api_key',
  'conflicting_api_keys',
  'insufficient_balance',
  'permission_denied',
  'model_not_found',
  'unsupported_media_type',
  'rate_limited',
  'upstream_error',
  'upstream_timeout',
] as const satisfies readonly ErrorCode[];
