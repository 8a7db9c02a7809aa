// A streamed chat answer relayed as server-sent events: each chunk with our id and model, under
// the reader's deadlines; then billed at the backend's usage when the stream finished, or at the
// prompt plus what was produced when it was cut short (by the client, a deadline, a shutdown or
// the backend); then our usage chunk with the cost and [DONE], or an error event.
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ChatChunk, ChatCompletion, Usage } from '../backends/backend.ts';
import type { Meter, MeterOutcome } from '../billing/metered-request.ts';
import { databaseUnavailable } from '../db/connection.ts';
import { ApiError } from '../errors.ts';
import { countTextWithin } from '../lib/tokens.ts';
import { completionIdFor } from '../usage/usage-store.ts';
import { asApiError } from './chat-errors.ts';
import { MAX_PRODUCED_CHARS, producedText, validUsage, withCost } from './chat-usage.ts';
import type { RequestLifetime } from './request-lifetime.ts';
import { SSE_HEADERS, SseWriter } from './sse.ts';

/**
 * What a relayed stream sends: the chat completion chunks themselves (chatChunks), another API's
 * events made from them (the Responses API's), or an upstream's own events passed on (a
 * Responses-capable upstream's). The relay keeps the deadlines and the bill.
 */
export interface StreamEncoder<T = ChatChunk> {
  /** Sends what one backend item carries; the writer's backpressure promise, if it has one. */
  chunk(sse: SseWriter, item: T): Promise<void> | undefined;
  /** Ends a stream that finished or was cut short by the backend's end, with its usage and cost. */
  end(sse: SseWriter, usage: Usage & { cost_cents: number }, finishReason: string | null, created: number): Promise<void> | undefined;
  /** Ends a stream that failed after it started. */
  fail(sse: SseWriter, failure: ApiError): Promise<void> | undefined;
}

/**
 * What the relay learns from the items a backend streams, to bill the stream: the backend's
 * usage, how it finished, and the text produced (kept to count it when no usage comes; past
 * MAX_PRODUCED_CHARS it is far beyond any output cap, so it is billed at the cap and no more is kept).
 */
export class StreamTally {
  usage: Usage | undefined;
  finishReason: string | null = null;
  created = Math.floor(Date.now() / 1000);
  produced = '';
  overflow = false;

  add(text: string): void {
    if (this.overflow || !text) return;
    this.produced += text;
    if (this.produced.length > MAX_PRODUCED_CHARS) this.overflow = true;
  }
}

/** Reads a chat chunk for the bill (and makes its choices a list, whatever the backend sent). */
export function readChunk(chunk: ChatChunk, tally: StreamTally): void {
  if (validUsage(chunk.usage)) tally.usage = chunk.usage;
  tally.created = chunk.created ?? tally.created;
  const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
  for (const c of choices) {
    tally.add(producedText(c.delta));
    if (c.finish_reason) tally.finishReason = c.finish_reason;
  }
  chunk.choices = choices;
}

/** Chat completions: each chunk with our id and model, our usage chunk when asked for, then [DONE]. */
export function chatChunks(requestId: string, modelId: string, includeUsage: boolean): StreamEncoder {
  const completionId = completionIdFor(requestId);
  return {
    chunk(sse, chunk) {
      // The backend's usage chunk is replaced by ours (with the cost) at the end.
      if (chunk.choices.length === 0) return undefined;
      // The chunk is this request's own (parsed or built for it), so it is sent as it is, not copied.
      chunk.id = completionId;
      chunk.model = modelId;
      chunk.usage = undefined;
      return sse.send(chunk);
    },
    end(sse, usage, _finishReason, created) {
      if (includeUsage) sse.send({ id: completionId, object: 'chat.completion.chunk', created, model: modelId, choices: [], usage });
      sse.done();
      return undefined;
    },
    fail(sse, failure) {
      const sent = sse.send(failure.toBody());
      sse.end();
      return sent;
    },
  };
}

export type StreamOptions<T> = {
  promptTokens: number;
  maxOutput: number;
  lifetime: RequestLifetime;
  /** Reads one item for the bill. */
  read: (item: T, tally: StreamTally) => void;
  encoder: StreamEncoder<T>;
  /** How long one wait for a slow reader may take (BIZORA_CLIENT_TIMEOUT_MS). */
  stallMs: number;
  /** How long a reader has to take the last bytes. */
  lingerMs: number;
};

/** A JSON answer to a streaming request (some upstreams ignore `stream`) as one chunk. */
export async function* chunksOf(body: ChatCompletion): AsyncGenerator<ChatChunk> {
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

export async function relayStream<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  meter: Meter,
  items: AsyncIterable<T>,
  opts: StreamOptions<T>,
) {
  const { lifetime, encoder } = opts;
  reply.hijack();
  // With the headers set on the reply before (a key's x-ratelimit-*): a hijacked reply sends none itself.
  reply.raw.writeHead(200, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...SSE_HEADERS, 'x-request-id': request.id });
  const sse = new SseWriter(reply.raw, { stallMs: opts.stallMs, signal: lifetime.signal, lingerMs: opts.lingerMs });
  const tally = new StreamTally();
  let failure: ApiError | undefined;
  try {
    for await (const item of items) {
      meter.firstChunk();
      opts.read(item, tally);
      const backpressure = encoder.chunk(sse, item);
      if (backpressure) await backpressure;
      if (lifetime.reason) break;
    }
  } catch (err) {
    if (!lifetime.clientGone) {
      failure = asApiError(err, lifetime);
      if (!(err instanceof ApiError) && !lifetime.reason) request.log.warn({ err }, 'backend stream failed');
    }
  }
  meter.backendAnswered();
  const { usage, finishReason, created } = tally;
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
          completion_tokens: tally.overflow ? opts.maxOutput : await countTextWithin(tally.produced, opts.maxOutput),
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
      bill: complete || cancelled || tally.produced.length > 0,
      finishReason,
      errorCode: failure?.code ?? null,
    };
    charged = await meter.close(outcome);
  } catch (err) {
    request.log.error({ err }, 'settling a stream failed; the hold will expire unbilled');
    failure ??= databaseUnavailable(err) ? new ApiError('service_unavailable') : new ApiError('internal_error');
  }
  if (failure) await encoder.fail(sse, failure);
  else if (!cancelled) await encoder.end(sse, withCost(counted, charged), finishReason, created);
  request.log.debug({ status: lifetime.clientGone ? 499 : (failure?.status ?? 200), costMicros: charged }, 'stream settled');
  return reply;
}
