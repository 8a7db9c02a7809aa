// POST /v1/chat/completions: check the limits, hold the worst case, call the backend, answer
// (JSON or a relayed stream), settle. The hold is placed before the backend sees the request;
// whatever happens after (answer, backend failure, client gone, deadline, shutdown) the meter is
// closed exactly once with what was actually produced.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { ChatChunk, ChatCompletion, ChatRequest, Usage } from '../backends/backend.ts';
import type { ModelRoute } from '../backends/model-registry.ts';
import type { Meter } from '../billing/metered-request.ts';
import { REQUEST_GRACE_MS } from '../config.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, passThrough, typed } from '../http/openapi.ts';
import type { AuthContext } from '../keys/verify.ts';
import { completionIdFor } from '../usage/usage-store.ts';
import { admitAndHold } from './admission.ts';
import { asApiError, shuttingDown } from './chat-errors.ts';
import { type AnswerReading, answerJson, readCompletion } from './chat-json.ts';
import { type ChatLimits, checkLimits, type LimitParams, upstreamRequest } from './chat-limits.ts';
import { chatChunks, chunksOf, readChunk, relayStream, type StreamEncoder, type StreamTally } from './chat-stream.ts';
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
 * How a chat answer is presented: chat completions as they are, or another API made from them
 * (the Responses API). The steps, the hold and the bill are the same for both.
 */
export type AnswerFormat = {
  /** The JSON body to send for a backend's complete answer, billed at `usage`. */
  json(answer: ChatCompletion, usage: Usage & { cost_cents: number }): unknown;
  /** The events a streamed answer is sent as. */
  stream(): StreamEncoder;
  /** The names of the output limit and the prompt in this API, for its errors. */
  params?: LimitParams;
};

/** A backend's answer: complete, or a stream of items. */
export type Answer<J, S> = { kind: 'json'; body: J } | { kind: 'stream'; items: AsyncIterable<S> };

/**
 * One request's exchange with its backend: what the backend is asked, how its answer is read for
 * the bill, and how it is presented. Chat completions, and the Responses API made into them, ask
 * the backend's chat (overChat); a Responses-capable upstream is asked in its own API.
 */
export type Exchange<J, S> = {
  /** The request as chat completions: its limits and its hold are decided on it. */
  chat: ChatRequest;
  /** The hold covers the model's whole context window as the prompt, not the prompt counted. */
  holdsWholeContext?: boolean;
  stream: boolean;
  call(backend: { signal: AbortSignal; perChoice: number; promptTokens: number }): Promise<Answer<J, S>>;
  /** What a complete answer tells the bill, and the body sent for it. */
  read(answer: J): AnswerReading;
  json(answer: J, usage: Usage & { cost_cents: number }): unknown;
  /** What a streamed item tells the bill, and the events the stream is sent as. */
  readItem(item: S, tally: StreamTally): void;
  encoder(): StreamEncoder<S>;
  params?: LimitParams;
};

export type ChatPipeline = <J, S>(
  request: FastifyRequest,
  reply: FastifyReply,
  modelId: string,
  exchangeFor: (route: ModelRoute) => Exchange<J, S>,
) => Promise<FastifyReply>;

/** A chat request asked of the backend's chat, its answer presented in `format`. */
export function overChat(route: ModelRoute, body: ChatRequest, format: AnswerFormat): Exchange<ChatCompletion, ChatChunk> {
  const stream = body.stream === true;
  return {
    chat: body,
    stream,
    async call({ signal, perChoice, promptTokens }) {
      const result = await route.backend.chat({ request: upstreamRequest(body, route, perChoice, stream), stream, signal, promptTokens });
      if (stream) return { kind: 'stream', items: result.kind === 'stream' ? result.chunks : chunksOf(result.body) };
      if (result.kind !== 'json') {
        throw new ApiError('upstream_error', { message: 'The model backend streamed an answer that was asked for as JSON.' });
      }
      return result;
    },
    read: readCompletion,
    json: format.json,
    readItem: readChunk,
    encoder: format.stream,
    ...(format.params ? { params: format.params } : {}),
  };
}

/** The steps every model request takes, whichever API it came in by. */
export function chatPipeline(deps: Deps): ChatPipeline {
  const readerDeadlines = { stallMs: deps.config.clientTimeoutMs, lingerMs: Math.min(REQUEST_GRACE_MS, deps.config.clientTimeoutMs) };

  return async function serve(request, reply, modelId, exchangeFor) {
    const auth = request.auth;
    if (!auth) throw new ApiError('missing_api_key');
    const route = modelFor(deps, modelId, auth, 'chat');
    const exchange = exchangeFor(route);
    const limits = await checkLimits(exchange.chat, route, exchange.params);
    // Watch for the client leaving from here on: a client gone during the hold is not sent upstream.
    const lifetime = new RequestLifetime(reply.raw, deps.config.upstreamTimeoutMs, deps.inFlight);
    const meter = await holdWorstCase(reply, auth, route, limits, exchange);
    // Whatever path this request takes, the meter is closed before the handler returns; a
    // failure no path foresaw closes it unbilled at once rather than leaving the hold to expire.
    try {
      return await answer(exchange, limits, meter, lifetime, reply);
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

  /** The request admitted under its key's rate limits, and its worst case held (a 429 or a 402 when not). */
  function holdWorstCase(
    reply: FastifyReply,
    auth: AuthContext,
    route: ModelRoute,
    limits: ChatLimits,
    exchange: Exchange<unknown, unknown>,
  ) {
    const prompt = exchange.holdsWholeContext ? route.model.context_window : limits.promptTokens;
    const ctx = {
      auth,
      model: route.model,
      backendKind: route.backend.kind,
      requestId: reply.request.id,
      promptTokens: prompt,
      maxOutputTokens: limits.maxOutput,
      stream: exchange.stream,
      startedAt: deps.clock.now(),
    };
    // Tokens per minute count the prompt as counted: the whole context held for money is not its size.
    return admitAndHold(deps, reply, ctx, limits.promptTokens + limits.maxOutput);
  }

  async function answer<J, S>(exchange: Exchange<J, S>, limits: ChatLimits, meter: Meter, lifetime: RequestLifetime, reply: FastifyReply) {
    const { request } = reply;
    const base = { promptTokens: limits.promptTokens, completionTokens: 0 };
    if (lifetime.reason) {
      // Ended while the hold was placed: nothing reached the backend, nothing is billed.
      const shutdown = lifetime.reason === 'shutdown';
      await meter.close({ ...base, status: 'cancelled', httpStatus: shutdown ? 503 : 499, bill: false });
      if (shutdown) throw shuttingDown();
      return reply;
    }

    let result: Answer<J, S>;
    meter.backendCalled();
    try {
      result = await exchange.call({ signal: lifetime.signal, perChoice: limits.perChoice, promptTokens: limits.promptTokens });
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

    if (result.kind === 'json') {
      meter.backendAnswered();
      return answerJson(reply, meter, result.body, { ...base, maxOutput: limits.maxOutput }, exchange);
    }
    return relayStream(request, reply, meter, result.items, {
      ...base,
      ...readerDeadlines,
      maxOutput: limits.maxOutput,
      lifetime,
      read: exchange.readItem,
      encoder: exchange.encoder(),
    });
  }
}

export function registerChatCompletions(app: FastifyInstance, serve: ChatPipeline): void {
  typed(app).post('/chat/completions', { schema: CHAT_SCHEMA, ...passThrough }, async (request, reply) => {
    const body: Body = request.body;
    return serve(request, reply, body.model, (route) => overChat(route, body, chatCompletions(request.id, body)));
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
