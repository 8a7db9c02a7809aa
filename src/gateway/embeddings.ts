// POST /v1/embeddings: count the inputs' tokens, hold their cost (known exactly up front: an
// embedding has no output), call the backend, settle at the backend's count (or ours), answer
// with the cost. Bounded: at most 2,048 inputs, each within the model's context window, and at
// most MAX_VALUES numbers in the answer (the vectors are parsed and sent on in one piece).
import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import { type EmbeddingList, type EmbeddingRequest, inputsOf } from '../backends/backend.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, passThrough, typed } from '../http/openapi.ts';
import { countTextWithin } from '../lib/tokens.ts';
import { admitAndHold } from './admission.ts';
import { asApiError, shuttingDown } from './chat-errors.ts';
import { withCost } from './chat-usage.ts';
import { MODEL_CALL_ERRORS, modelFor } from './model-route.ts';
import { RequestLifetime } from './request-lifetime.ts';
import { EmbeddingListSchema, EmbeddingsBody } from './schemas.ts';

/** Inputs times dimensions: 512 inputs of 1,536 (LangChain's default batch) fit; a 40 MB answer does not. */
export const MAX_VALUES = 1_048_576;

const SCHEMA = {
  tags: ['API'],
  security: [{ apiKey: [] }],
  summary: 'Create embeddings',
  description:
    "The inputs' tokens are held at the model's input price before the backend sees them, and billed at the backend's count. `encoding_format: base64` is little-endian float32, as OpenAI's.",
  body: EmbeddingsBody,
  response: {
    200: EmbeddingListSchema,
    ...errorResponses(...MODEL_CALL_ERRORS),
  },
};

export function registerEmbeddings(app: FastifyInstance, deps: Deps): void {
  typed(app).post('/embeddings', { schema: SCHEMA, ...passThrough }, async (request, reply) => {
    const auth = request.auth;
    if (!auth) throw new ApiError('missing_api_key');
    const body: Static<typeof EmbeddingsBody> & EmbeddingRequest = request.body;
    const route = modelFor(deps, body.model, auth, 'embedding');
    const inputs = inputsOf(body.input);
    const dimensions = body.dimensions ?? route.model.dimensions;
    if (dimensions > route.model.dimensions) {
      throw new ApiError('invalid_request', {
        param: 'dimensions',
        message: `dimensions is too large: ${dimensions}. The model ${route.model.id} makes vectors of at most ${route.model.dimensions}.`,
      });
    }
    if (inputs.length * dimensions > MAX_VALUES) {
      throw new ApiError('invalid_request', {
        param: 'input',
        message: `${inputs.length} inputs of ${dimensions} dimensions are more than this server answers at once (${MAX_VALUES} numbers): send them in batches of ${Math.floor(MAX_VALUES / dimensions)}.`,
      });
    }
    const inputTokens = await countInputs(inputs, route.model.context_window, route.model.id);
    // With no output to leave room in the hold, an upstream whose tokenizer counts more than ours
    // would be billed short: its hold is the most tokens the inputs can be (their UTF-8 bytes and
    // one, up to the context window; token arrays exactly). The simulator counts as we do.
    const holdTokens = route.backend.kind === 'simulator' ? inputTokens : mostTokens(inputs, route.model.context_window);

    const lifetime = new RequestLifetime(reply.raw, deps.config.upstreamTimeoutMs, deps.inFlight);
    const ctx = {
      auth,
      model: route.model,
      backendKind: route.backend.kind,
      requestId: request.id,
      promptTokens: holdTokens,
      maxOutputTokens: 0,
      stream: false,
      startedAt: deps.clock.now(),
    };
    const meter = await admitAndHold(deps, reply, ctx, holdTokens);
    const base = { promptTokens: inputTokens, completionTokens: 0 };
    let answer: EmbeddingList;
    meter.backendCalled();
    try {
      answer = await route.backend.embed({
        request: { ...body, model: route.model.upstream_model ?? route.model.id },
        signal: lifetime.signal,
        inputTokens,
        dimensions,
      });
    } catch (err) {
      const cancelled = lifetime.clientGone || lifetime.reason === 'shutdown';
      const apiErr = asApiError(err, lifetime);
      if (!(err instanceof ApiError) && !cancelled) request.log.warn({ err }, 'backend call failed');
      // A request its client (or a shutdown) cancelled after the inputs were sent pays for them, as upstreams charge us.
      await meter.close({
        ...base,
        status: cancelled ? 'cancelled' : 'failed',
        httpStatus: lifetime.clientGone ? 499 : apiErr.status,
        bill: cancelled,
        errorCode: cancelled ? null : apiErr.code,
      });
      if (lifetime.reason === 'shutdown') throw shuttingDown();
      if (lifetime.clientGone) return reply;
      throw apiErr;
    }
    meter.backendAnswered();
    const promptTokens = answer.usage?.prompt_tokens ?? inputTokens;
    const charged = await meter.close({ ...base, promptTokens, status: 'succeeded', httpStatus: 200, bill: true });
    const { cost_cents } = withCost({ prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: 0 }, charged);
    return reply.send({
      object: 'list',
      data: answer.data,
      model: route.model.id,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens, cost_cents },
    });
  });
}

/** The inputs' tokens, each input within the context window (counted in slices, up to it). */
async function countInputs(inputs: (string | number[])[], window: number, modelId: string): Promise<number> {
  let total = 0;
  for (const [i, input] of inputs.entries()) {
    const tokens = typeof input === 'string' ? await countTextWithin(input, window) : input.length;
    if (tokens > window) {
      throw new ApiError('invalid_request', {
        param: 'input',
        publicCode: 'context_length_exceeded',
        message: `Input ${i} has more than ${window} tokens, which is all the model ${modelId} accepts.`,
      });
    }
    total += tokens;
  }
  return total;
}

/** An upper bound of any tokenizer's count: a token is at least one byte (and a start token). */
const mostTokens = (inputs: (string | number[])[], window: number): number =>
  inputs.reduce((sum, input) => sum + (typeof input === 'string' ? Math.min(Buffer.byteLength(input) + 1, window) : input.length), 0);
