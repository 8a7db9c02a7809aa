// POST /v1/chat/completions: estimate, hold, call the backend, settle. The hold is placed before
// the backend sees the request; whatever happens after (answer, backend failure, client gone,
// deadline) the meter is closed exactly once with what was actually produced.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { BackendResult, ChatChunk, ChatCompletion, ChatRequest, Usage } from '../backends/backend.ts';
import type { ModelRoute } from '../backends/model-registry.ts';
import { Meter, type MeterOutcome } from '../billing/metered-request.ts';
import { exactCents } from '../billing/pricing.ts';
import { REQUEST_GRACE_MS } from '../config.ts';
import { databaseUnavailable } from '../db/connection.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, passThrough, typed } from '../http/openapi.ts';
import { countPromptTokensWithin, countTextWithin } from '../lib/tokens.ts';
import { completionIdFor } from '../usage/usage-store.ts';
import { RequestLifetime } from './request-lifetime.ts';
import { ChatBody, ChatCompletion as ChatCompletionSchema } from './schemas.ts';
import { SSE_HEADERS, SseWriter } from './sse.ts';

type Body = Static<typeof ChatBody> & ChatRequest;

async function checkLimits(body: Body, route: ModelRoute): Promise<{ maxOutput: number; promptTokens: number }> {
  const param = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const requested = body.max_completion_tokens ?? body.max_tokens ?? null;
  const cap = route.model.max_output_tokens;
  if (requested !== null && requested > cap) {
    throw new ApiError('invalid_request', {
      param,
      message: `${param} is too large: ${requested}. The model ${route.model.id} produces at most ${cap} tokens.`,
    });
  }
  // Counted only up to the context window: past it the answer is the same whatever the rest holds.
  const promptTokens = await countPromptTokensWithin(body, route.model.context_window);
  if (promptTokens > route.model.context_window) {
    throw new ApiError('invalid_request', {
      param: 'messages',
      publicCode: 'context_length_exceeded',
      message: `The messages have more than ${route.model.context_window} tokens, which is all the model ${route.model.id} accepts.`,
    });
  }
  return { maxOutput: requested ?? cap, promptTokens };
}

/** What the backend is asked: its own model name, a max_tokens our hold covers, usage in streams. */
function upstreamRequest(body: Body, route: ModelRoute, maxOutput: number, stream: boolean): ChatRequest {
  const req: ChatRequest = { ...body, model: route.model.upstream_model ?? route.model.id };
  if (req.max_completion_tokens == null) req.max_tokens = maxOutput;
  if (stream) req.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
  return req;
}

/** Text the model produced in a message or delta, to count tokens the backend did not report. */
function producedText(part: { content?: unknown; refusal?: unknown; tool_calls?: unknown } | undefined): string {
  if (!part) return '';
  let text = typeof part.content === 'string' ? part.content : '';
  if (typeof part.refusal === 'string') text += part.refusal;
  if (Array.isArray(part.tool_calls)) {
    for (const tc of part.tool_calls as Array<{ function?: { name?: unknown; arguments?: unknown } }>) {
      if (typeof tc?.function?.name === 'string') text += tc.function.name;
      if (typeof tc?.function?.arguments === 'string') text += tc.function.arguments;
    }
  }
  return text;
}

const tokenCount = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
const validUsage = (u: unknown): u is Usage =>
  !!u && typeof u === 'object' && tokenCount((u as Usage).prompt_tokens) && tokenCount((u as Usage).completion_tokens);

// Produced text is kept to count it when the backend reports no usage; past this many characters
// the answer is far beyond any output cap, so it is billed at the cap and no more is kept.
const MAX_PRODUCED_CHARS = 4 * 1024 * 1024;

const shuttingDown = () => new ApiError('service_unavailable', { message: 'The server is shutting down. Retry the request.' });

const withCost = (usage: Usage, chargedMicros: number) => ({
  ...usage,
  total_tokens: usage.prompt_tokens + usage.completion_tokens,
  cost_cents: exactCents(chargedMicros),
});

function asApiError(err: unknown, lifetime: RequestLifetime): ApiError {
  if (lifetime.reason === 'shutdown') return shuttingDown();
  if (err instanceof ApiError) return err;
  if (lifetime.timedOut) return new ApiError('upstream_timeout');
  return new ApiError('upstream_error');
}

/** A JSON answer to a streaming request (some upstreams ignore `stream`) as one chunk. */
async function* chunksOf(body: ChatCompletion): AsyncGenerator<ChatChunk> {
  yield {
    id: body.id,
    object: 'chat.completion.chunk',
    created: body.created,
    model: body.model,
    choices: body.choices.map((c) => ({
      index: c.index,
      // A delta's tool calls carry their index (the SDKs' stream helpers assemble calls by it).
      delta: Array.isArray(c.message.tool_calls)
        ? { ...c.message, tool_calls: (c.message.tool_calls as object[]).map((tc, index) => ({ index, ...tc })) }
        : c.message,
      finish_reason: c.finish_reason,
    })),
    usage: body.usage ?? null,
  };
}

const CHAT_SCHEMA = {
  tags: ['API'],
  security: [{ apiKey: [] }],
  summary: 'Create a chat completion (JSON, or server-sent events with `stream: true`)',
  description:
    "The request's worst case (its prompt and max_tokens, or the model's output cap) is held against the balance before the backend sees it; the answer is billed at its real usage, and a stream cut short at the prompt plus what was produced.",
  body: ChatBody,
  response: {
    200: ChatCompletionSchema,
    ...errorResponses(
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
    ),
  },
};

export function registerChatCompletions(app: FastifyInstance, deps: Deps): void {
  typed(app).post('/chat/completions', { schema: CHAT_SCHEMA, ...passThrough }, async (request, reply) => {
    const auth = request.auth;
    if (!auth) throw new ApiError('missing_api_key');
    const body: Body = request.body;
    const route = deps.models.resolve(body.model, auth.key.mode);
    if (!route) {
      throw new ApiError('model_not_found', {
        param: 'model',
        message: `The model '${body.model}' does not exist or you do not have access to it.`,
      });
    }
    const { maxOutput, promptTokens } = await checkLimits(body, route);
    const stream = body.stream === true;
    const startedAt = deps.clock.now();
    // Watch for the client leaving from here on: a client gone during the hold is not sent upstream.
    const lifetime = new RequestLifetime(reply.raw, deps.config.upstreamTimeoutMs, deps.inFlight);
    const meter = await Meter.open(
      { ledger: deps.ledger, openMeters: deps.openMeters, now: deps.clock.now, holdTtlMs: deps.config.holdTtlSeconds * 1000 },
      {
        auth,
        model: route.model,
        backendKind: route.backend.kind,
        requestId: request.id,
        promptTokens,
        maxOutputTokens: maxOutput,
        stream,
        startedAt,
      },
    );

    const answer = async () => {
      const base = { promptTokens, completionTokens: 0 };
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
          request: upstreamRequest(body, route, maxOutput, stream),
          stream,
          signal: lifetime.signal,
          promptTokens,
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
        return sendJson(reply, meter, result.body, { ...base, maxOutput });
      }
      return sendStream(request, reply, meter, result.kind === 'stream' ? result.chunks : chunksOf(result.body), {
        ...base,
        maxOutput,
        lifetime,
        includeUsage: body.stream_options?.include_usage === true,
      });
    };

    // Whatever path this request takes, the meter is closed before the handler returns; a
    // failure no path foresaw closes it unbilled at once rather than leaving the hold to expire.
    try {
      return await answer();
    } catch (err) {
      await meter
        .close({ promptTokens, completionTokens: 0, status: 'failed', httpStatus: 500, bill: false, errorCode: 'internal_error' })
        .catch(() => {});
      throw err;
    }
  });

  async function sendJson(
    reply: FastifyReply,
    meter: Meter,
    answer: ChatCompletion,
    base: { promptTokens: number; completionTokens: number; maxOutput: number },
  ) {
    const usage: Usage = validUsage(answer.usage)
      ? answer.usage
      : {
          prompt_tokens: base.promptTokens,
          completion_tokens: await countTextWithin(answer.choices.map((c) => producedText(c.message)).join(''), base.maxOutput),
          total_tokens: 0,
        };
    const finishReason = answer.choices[0]?.finish_reason ?? null;
    const charged = await meter.close({
      status: 'succeeded',
      httpStatus: 200,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      bill: true,
      finishReason,
    });
    // The answer is this request's own (parsed for it), so it is completed in place, not copied.
    answer.id = completionIdFor(meter.ctx.requestId);
    answer.model = meter.ctx.model.id;
    answer.usage = withCost(usage, charged);
    return reply.send(answer);
  }

  async function sendStream(
    request: FastifyRequest,
    reply: FastifyReply,
    meter: Meter,
    chunks: AsyncIterable<ChatChunk>,
    opts: { promptTokens: number; maxOutput: number; lifetime: RequestLifetime; includeUsage: boolean },
  ) {
    const { lifetime } = opts;
    reply.hijack();
    reply.raw.writeHead(200, { ...SSE_HEADERS, 'x-request-id': request.id });
    const sse = new SseWriter(reply.raw, {
      stallMs: deps.config.clientTimeoutMs,
      signal: lifetime.signal,
      lingerMs: Math.min(REQUEST_GRACE_MS, deps.config.clientTimeoutMs),
    });
    const { model } = meter.ctx;
    const completionId = completionIdFor(request.id);
    let produced = '';
    let overflow = false;
    let usage: Usage | undefined;
    let finishReason: string | null = null;
    let created = Math.floor(Date.now() / 1000);
    let failure: ApiError | undefined;
    try {
      for await (const chunk of chunks) {
        if (validUsage(chunk.usage)) usage = chunk.usage;
        created = chunk.created ?? created;
        const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
        for (const c of choices) {
          if (!overflow) produced += producedText(c.delta);
          if (produced.length > MAX_PRODUCED_CHARS) overflow = true;
          if (c.finish_reason) finishReason = c.finish_reason;
        }
        // The backend's usage chunk is replaced by ours (with the cost) at the end.
        if (choices.length === 0) continue;
        // The chunk is this request's own (parsed or built for it), so it is sent as it is, not copied.
        chunk.id = completionId;
        chunk.model = model.id;
        chunk.usage = undefined;
        const backpressure = sse.send(chunk);
        if (backpressure) await backpressure;
        if (lifetime.reason) break;
      }
    } catch (err) {
      if (!lifetime.clientGone) {
        failure = asApiError(err, lifetime);
        if (!(err instanceof ApiError) && !lifetime.reason) request.log.warn({ err }, 'backend stream failed');
      }
    }
    // Ended while a chunk was being written (the loop left before the backend noticed).
    if (!failure && lifetime.reason && lifetime.reason !== 'client_gone') failure = asApiError(undefined, lifetime);
    // Cancelled: the client left (or stopped reading), or a shutdown ended the request.
    const cancelled = lifetime.clientGone || lifetime.reason === 'shutdown';
    const complete = !lifetime.reason && !failure;
    // A finished stream is billed at the backend's own count; a stream cut short at the prompt
    // plus what was produced before the cut, counted with our tokenizer (up to the output cap
    // the hold covers: the charge never exceeds the hold).
    const counted: Usage =
      complete && usage
        ? usage
        : {
            prompt_tokens: usage?.prompt_tokens ?? opts.promptTokens,
            completion_tokens: overflow ? opts.maxOutput : await countTextWithin(produced, opts.maxOutput),
            total_tokens: 0,
          };
    let charged = 0;
    try {
      const outcome: MeterOutcome = {
        status: complete ? 'succeeded' : cancelled ? 'cancelled' : 'failed',
        httpStatus: complete ? 200 : lifetime.clientGone ? 499 : (failure?.status ?? 502),
        promptTokens: counted.prompt_tokens,
        completionTokens: counted.completion_tokens,
        // A backend that failed before producing anything is not billed.
        bill: complete || cancelled || produced.length > 0,
        finishReason,
        errorCode: failure?.code ?? null,
      };
      charged = await meter.close(outcome);
    } catch (err) {
      request.log.error({ err }, 'settling a stream failed; the hold will expire unbilled');
      failure ??= databaseUnavailable(err) ? new ApiError('service_unavailable') : new ApiError('internal_error');
    }
    if (failure) {
      await sse.send(failure.toBody());
      sse.end();
    } else if (!cancelled) {
      if (opts.includeUsage) {
        await sse.send({
          id: completionId,
          object: 'chat.completion.chunk',
          created,
          model: model.id,
          choices: [],
          usage: withCost(counted, charged),
        });
      }
      sse.done();
    }
    request.log.debug({ status: lifetime.clientGone ? 499 : (failure?.status ?? 200), costMicros: charged }, 'stream settled');
    return reply;
  }
}
