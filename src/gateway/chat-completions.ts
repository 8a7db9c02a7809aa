// POST /v1/chat/completions: check the limits, hold the worst case, call the backend, answer
// (JSON or a relayed stream), settle. The hold is placed before the backend sees the request;
// whatever happens after (answer, backend failure, client gone, deadline, shutdown) the meter is
// closed exactly once with what was actually produced.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { BackendResult, ChatCompletion, ChatRequest, Usage } from '../backends/backend.ts';
import type { ModelRoute } from '../backends/model-registry.ts';
import { Meter } from '../billing/metered-request.ts';
import { REQUEST_GRACE_MS } from '../config.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, passThrough, typed } from '../http/openapi.ts';
import type { AuthContext } from '../keys/verify.ts';
import { completionIdFor } from '../usage/usage-store.ts';
import { asApiError, insufficientBalance, shuttingDown } from './chat-errors.ts';
import { answerJson } from './chat-json.ts';
import { type ChatLimits, checkLimits, type LimitParams, upstreamRequest } from './chat-limits.ts';
import { chatChunks, chunksOf, relayStream, type StreamEncoder } from './chat-stream.ts';
import { MODEL_CALL_ERRORS, modelFor } from './model-route.ts';
import { RequestLifetime } from './request-lifetime.ts';
import { ChatBody, ChatCompletion as ChatCompletionSchema } from './schemas.ts';

type Body = Static<typeof ChatBody> & ChatRequest;

const CHAT_SCHEMA = {
  tags: ['API'],
  security: [{ apiKey: [] }],
  summary: 'Create a chat completion (JSON, or server-sent events with `stream: true`)',
  description:
    "The request's worst case (its prompt and max_tokens, or the model's output cap) is held against the balance before the backend sees it; the answer is billed at its real usage, and a stream cut short at the prompt plus what was produced.",
  body: ChatBody,
  response: {
    200: ChatCompletionSchema,
    ...errorResponses(...MODEL_CALL_ERRORS),
  },
};

/**
 * How an answer is presented: chat completions as they are, or another API made from them (the
 * Responses API). The steps, the hold and the bill are the same for both.
 */
export type AnswerFormat = {
  /** The JSON body to send for a backend's complete answer, billed at `usage`. */
  json(answer: ChatCompletion, usage: Usage & { cost_cents: number }): unknown;
  /** The events a streamed answer is sent as. */
  stream(): StreamEncoder;
  /** The names of the output limit and the prompt in this API, for its errors. */
  params?: LimitParams;
};

export type ChatPipeline = (request: FastifyRequest, reply: FastifyReply, body: ChatRequest, format: AnswerFormat) => Promise<FastifyReply>;

/** The steps every chat request takes, whichever API it came in by. */
export function chatPipeline(deps: Deps): ChatPipeline {
  const meterDeps = { ledger: deps.ledger, openMeters: deps.openMeters, now: deps.clock.now, holdTtlMs: deps.config.holdTtlSeconds * 1000 };
  const readerDeadlines = { stallMs: deps.config.clientTimeoutMs, lingerMs: Math.min(REQUEST_GRACE_MS, deps.config.clientTimeoutMs) };

  return async function serve(request, reply, body, format) {
    const auth = request.auth;
    if (!auth) throw new ApiError('missing_api_key');
    const route = modelFor(deps, body.model, auth, 'chat');
    const limits = await checkLimits(body, route, format.params);
    // Watch for the client leaving from here on: a client gone during the hold is not sent upstream.
    const lifetime = new RequestLifetime(reply.raw, deps.config.upstreamTimeoutMs, deps.inFlight);
    const meter = await holdWorstCase(request.id, auth, route, limits, body.stream === true);
    // Whatever path this request takes, the meter is closed before the handler returns; a
    // failure no path foresaw closes it unbilled at once rather than leaving the hold to expire.
    try {
      return await answer(body, route, limits, meter, lifetime, reply, format);
    } catch (err) {
      await meter
        .close({
          promptTokens: limits.promptTokens,
          completionTokens: 0,
          status: 'failed',
          httpStatus: 500,
          bill: false,
          errorCode: 'internal_error',
        })
        .catch(() => {});
      throw err;
    }
  };

  /** The request's worst case held against the balance (a 402 when it does not cover it). */
  async function holdWorstCase(requestId: string, auth: AuthContext, route: ModelRoute, limits: ChatLimits, stream: boolean) {
    const opened = await Meter.open(meterDeps, {
      auth,
      model: route.model,
      backendKind: route.backend.kind,
      requestId,
      promptTokens: limits.promptTokens,
      maxOutputTokens: limits.maxOutput,
      stream,
      startedAt: deps.clock.now(),
    });
    if (!opened.ok) throw insufficientBalance(opened);
    return opened.meter;
  }

  async function answer(
    body: ChatRequest,
    route: ModelRoute,
    limits: ChatLimits,
    meter: Meter,
    lifetime: RequestLifetime,
    reply: FastifyReply,
    format: AnswerFormat,
  ) {
    const { request } = reply;
    const stream = body.stream === true;
    const base = { promptTokens: limits.promptTokens, completionTokens: 0 };
    if (lifetime.reason) {
      // Ended while the hold was placed: nothing reached the backend, nothing is billed.
      const shutdown = lifetime.reason === 'shutdown';
      await meter.close({ ...base, status: 'cancelled', httpStatus: shutdown ? 503 : 499, bill: false });
      if (shutdown) throw shuttingDown();
      return reply;
    }

    let result: BackendResult;
    try {
      result = await route.backend.chat({
        request: upstreamRequest(body, route, limits.perChoice, stream),
        stream,
        signal: lifetime.signal,
        promptTokens: limits.promptTokens,
      });
    } catch (err) {
      if (lifetime.clientGone || lifetime.reason === 'shutdown') {
        // The prompt was sent to the backend: a request cancelled (by its client, or by a
        // shutdown past its grace) pays for it, as upstreams charge us.
        const shutdown = lifetime.reason === 'shutdown';
        await meter.close({ ...base, status: 'cancelled', httpStatus: shutdown ? 503 : 499, bill: true });
        if (shutdown) throw shuttingDown();
        return reply;
      }
      const apiErr = asApiError(err, lifetime);
      if (!(err instanceof ApiError)) request.log.warn({ err }, 'backend call failed');
      await meter.close({ ...base, status: 'failed', httpStatus: apiErr.status, bill: false, errorCode: apiErr.code });
      throw apiErr;
    }

    if (!stream) {
      if (result.kind !== 'json') {
        const apiErr = new ApiError('upstream_error', { message: 'The model backend streamed an answer that was asked for as JSON.' });
        await meter.close({ ...base, status: 'failed', httpStatus: apiErr.status, bill: false, errorCode: apiErr.code });
        throw apiErr;
      }
      return answerJson(reply, meter, result.body, { ...base, maxOutput: limits.maxOutput }, format.json);
    }
    return relayStream(request, reply, meter, result.kind === 'stream' ? result.chunks : chunksOf(result.body), {
      ...base,
      ...readerDeadlines,
      maxOutput: limits.maxOutput,
      lifetime,
      encoder: format.stream(),
    });
  }
}

export function registerChatCompletions(app: FastifyInstance, serve: ChatPipeline): void {
  typed(app).post('/chat/completions', { schema: CHAT_SCHEMA, ...passThrough }, async (request, reply) => {
    const body: Body = request.body;
    return serve(request, reply, body, chatCompletions(request.id, body));
  });
}

/** Chat completions as the backend made them, with our id, the model as named and the cost. */
function chatCompletions(requestId: string, body: Body): AnswerFormat {
  return {
    json(answer, usage) {
      // The answer is this request's own (parsed for it), so it is completed in place, not copied.
      answer.id = completionIdFor(requestId);
      answer.model = body.model;
      answer.usage = usage;
      return answer;
    },
    stream: () => chatChunks(requestId, body.model, body.stream_options?.include_usage === true),
  };
}
