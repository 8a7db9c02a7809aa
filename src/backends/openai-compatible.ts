// A backend that forwards to any OpenAI-compatible HTTP API (OpenAI, OpenRouter, vLLM, Ollama,
// llama.cpp …) over a keep-alive undici pool. It always asks for usage in streams, maps the
// upstream's failures to our catalogue, hands the gateway only well-formed answers
// (upstream-answer.ts), reads at most a bounded amount of any one answer or stream event, and
// stops the upstream call when our client goes away. The README's Errors section has the table
// of each upstream fault and its answer; test/upstream-faults.test.ts tests each.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, type Dispatcher, request, errors as undiciErrors } from 'undici';
import type { ModelConfig } from '../config.ts';
import { ApiError } from '../errors.ts';
import {
  type BackendCall,
  type BackendResult,
  type ChatBackend,
  type ChatChunk,
  type EmbedCall,
  type EmbeddingList,
  inputsOf,
  type ResponsesCall,
  type ResponsesEvent,
  type ResponsesResult,
} from './backend.ts';
import { normaliseChunk, normaliseCompletion, normaliseEmbeddings, normaliseResponse, normaliseResponsesEvent } from './upstream-answer.ts';

type UpstreamOptions = { url: string; apiKey: string | undefined; timeoutMs: number };

/** Joins a base URL (with or without `/v1`) and the chat completions path. */
export function chatCompletionsUrl(base: string): string {
  return `${base.replace(/\/+$/, '')}/chat/completions`;
}

const isAbort = (err: unknown): boolean =>
  err instanceof Error && (err.name === 'AbortError' || err instanceof undiciErrors.RequestAbortedError);

/**
 * Maps a failure to reach or read the upstream to 502/504; an abort (the client gone, or our
 * own deadline) is re-thrown as is for the gateway to tell apart.
 */
function transportError(err: unknown, signal: AbortSignal, phase: 'connect' | 'answer' = 'answer'): never | ApiError {
  if (signal.aborted || isAbort(err)) throw err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new ApiError('upstream_timeout');
  }
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string }).code;
  const what = phase === 'connect' ? 'The model backend could not be reached' : "The model backend's connection broke off";
  return new ApiError('upstream_error', { message: `${what}${code ? ` (${code})` : ''}.` });
}

/** Maps an upstream error answer: its 4xx are passed on in OpenAI shape, the rest are 502. */
export function upstreamStatusError(status: number, text: string, retryAfter: string | undefined): ApiError {
  let upstream: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } = {};
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    upstream = (
      parsed.error && typeof parsed.error === 'object'
        ? parsed.error
        : typeof parsed.error === 'string'
          ? { message: parsed.error }
          : parsed
    ) as typeof upstream;
  } catch {
    // Not JSON: fall through with an empty description.
  }
  const message = typeof upstream.message === 'string' && upstream.message ? upstream.message : undefined;
  if (status === 429) {
    return new ApiError('rate_limited', {
      ...(message ? { message } : {}),
      ...(retryAfter ? { headers: { 'retry-after': retryAfter } } : {}),
    });
  }
  // The upstream refusing *our* credentials (401/403) or billing (402) is our fault, not the
  // caller's: passing a 401 on would make the SDK blame the caller's own valid key.
  if (status >= 400 && status < 500 && ![401, 402, 403].includes(status)) {
    return new ApiError('invalid_request', {
      status,
      type: typeof upstream.type === 'string' ? upstream.type : 'invalid_request_error',
      message: message ?? `The model backend refused the request (HTTP ${status}).`,
      param: typeof upstream.param === 'string' ? upstream.param : null,
      publicCode: typeof upstream.code === 'string' ? upstream.code : null,
    });
  }
  return new ApiError('upstream_error', { message: `The model backend failed (HTTP ${status}).` });
}

/** The largest complete JSON answer read from an upstream; a bigger one is a 502, not a buffer. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** The largest single stream event (characters buffered by the parser for one event). */
export const MAX_EVENT_CHARS = 1024 * 1024;
/** How much of an upstream's error answer is read for its message; the rest is discarded. */
const MAX_ERROR_BYTES = 64 * 1024;
/** How much of an upstream's own error message is passed on to the client. */
const MAX_UPSTREAM_MESSAGE_CHARS = 500;

type Body = Dispatcher.ResponseData['body'];

/** Drops a body unread. undici's body emits an AbortError when destroyed; nobody is listening. */
function discard(body: Body): void {
  body.on('error', () => {});
  body.destroy();
}

const tooLarge = () =>
  new ApiError('upstream_error', { message: `The model backend sent an answer larger than ${MAX_ANSWER_BYTES} bytes.` });

/**
 * Reads a body up to `limit` bytes. Past the limit it stops reading (the connection is dropped)
 * and either throws the 502 or, with `truncate`, returns what it has.
 */
async function readBody(body: Body, limit: number, opts: { truncate: boolean; contentLength: unknown }): Promise<string> {
  const declared = Number(opts.contentLength);
  if (!opts.truncate && Number.isFinite(declared) && declared > limit) {
    discard(body);
    throw tooLarge();
  }
  // A declared length within the limit is all undici will read (it enforces the framing): read
  // it in one go, which costs a fraction of iterating over the chunks (~30 µs per answer).
  if (!opts.truncate && opts.contentLength !== undefined && Number.isFinite(declared)) return body.text();
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    if (size + part.length > limit) {
      if (!opts.truncate) throw tooLarge(); // leaving the loop destroys the body
      parts.push(part.subarray(0, limit - size));
      break;
    }
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).toString('utf8');
}

const shortened = (text: string) => (text.length > MAX_UPSTREAM_MESSAGE_CHARS ? `${text.slice(0, MAX_UPSTREAM_MESSAGE_CHARS)}…` : text);

const hasError = (data: unknown): boolean => !!data && typeof data === 'object' && 'error' in data && !!data.error;

/** An error the upstream sent as data (an error event, or a 200 with an error body): a 502. */
function answeredError(data: unknown, what: string): ApiError {
  const error = (data as { error?: unknown } | null)?.error;
  const message = typeof error === 'string' ? error : (error as { message?: unknown } | null)?.message;
  return new ApiError('upstream_error', {
    message: typeof message === 'string' && message ? `${what}: ${shortened(message)}` : `${what}.`,
  });
}

/** The end of a stream (OpenAI's `data: [DONE]`, or a Responses stream's last event). */
const DONE = Symbol('done');

/**
 * The items of an upstream's event stream, one per event as `decode` makes it (a decode fault,
 * an ApiError, ends the stream with it). A stream that ends before `decode` or `isLast` saw its
 * end was cut off by the upstream.
 */
async function* sseItems<T>(
  body: AsyncIterable<Buffer>,
  signal: AbortSignal,
  decode: (event: EventSourceMessage) => T | typeof DONE,
  isLast: (item: T) => boolean = () => false,
): AsyncGenerator<T> {
  const queue: T[] = [];
  let done = false;
  let failure: ApiError | undefined;
  const parser = createParser({
    maxBufferSize: MAX_EVENT_CHARS,
    onError(err) {
      if (err.type === 'max-buffer-size-exceeded') {
        failure ??= new ApiError('upstream_error', {
          message: `The model backend sent a stream event larger than ${MAX_EVENT_CHARS} characters.`,
        });
      }
    },
    onEvent(event) {
      if (done || failure) return;
      try {
        const item = decode(event);
        if (item === DONE) {
          done = true;
          return;
        }
        queue.push(item);
        if (isLast(item)) done = true;
      } catch (err) {
        failure = err as ApiError;
      }
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const buf of body) {
      // After the end the rest of the body is drained unread: leaving the loop early destroys the
      // body with an AbortError (and its stack trace) on every stream.
      if (done) continue;
      parser.feed(decoder.decode(buf, { stream: true }));
      while (queue.length) yield queue.shift() as T;
      if (failure) throw failure;
    }
  } catch (err) {
    throw transportError(err, signal);
  }
  if (!done) parser.feed(decoder.decode());
  while (queue.length) yield queue.shift() as T;
  if (failure) throw failure;
  if (!done) throw new ApiError('upstream_error', { message: 'The model backend closed the stream before it was complete.' });
}

function parseEvent(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new ApiError('upstream_error', { message: 'The model backend sent a malformed stream event.' });
  }
}

/** A chat completions stream event: a chunk; an error arrives as `data: {"error": …}` (OpenAI, vLLM) or as an `event: error`. */
function chatEvent(event: EventSourceMessage): ChatChunk | typeof DONE {
  if (event.data === '[DONE]') return DONE;
  const parsed = parseEvent(event.data);
  if (event.event === 'error' || hasError(parsed)) throw answeredError(parsed, 'The model backend failed mid-stream');
  return normaliseChunk(parsed);
}

/** A Responses API stream event; its `error` event and response.failed are the upstream failing mid-stream. */
function responsesEvent(event: EventSourceMessage): ResponsesEvent {
  // A Responses stream ends with its response.completed; a [DONE] before it is a stream cut short.
  if (event.data === '[DONE]')
    throw new ApiError('upstream_error', { message: 'The model backend ended the stream before the response was complete.' });
  const parsed = normaliseResponsesEvent(parseEvent(event.data));
  if (parsed.type === 'error') throw answeredError({ error: parsed.error ?? parsed }, 'The model backend failed mid-stream');
  if (parsed.type === 'response.failed') throw answeredError({ error: parsed.response?.error ?? {} }, 'The model backend failed');
  return parsed;
}

/** A Responses stream ends with its response.completed (or .incomplete). */
const lastResponsesEvent = (e: ResponsesEvent) => e.type === 'response.completed' || e.type === 'response.incomplete';

/**
 * The stream after its first chunk has arrived: a stream that fails before it (reset, stall,
 * malformed, error event) fails `chat` itself, so the client gets an HTTP status rather than a
 * 200 followed by an error event. Returning early closes the upstream stream too.
 */
async function startedStream<T>(chunks: AsyncGenerator<T>): Promise<AsyncIterable<T>> {
  let first: IteratorResult<T> | undefined = await chunks.next();
  // The rest is `chunks` itself, not a generator around it: one more generator per stream added
  // promises to every chunk.
  const iterator: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => iterator,
    next() {
      const taken = first;
      first = undefined;
      return taken ? Promise.resolve(taken) : chunks.next();
    },
    return(value?: unknown) {
      first = undefined;
      return chunks.return(value);
    },
  };
  return iterator;
}

/** A JSON answer, read within MAX_ANSWER_BYTES; a malformed one, or an error answered as data, is a 502. */
async function readJson(res: Awaited<ReturnType<typeof request>>, signal: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await readBody(res.body, MAX_ANSWER_BYTES, { truncate: false, contentLength: res.headers['content-length'] });
  } catch (err) {
    throw transportError(err, signal);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError('upstream_error', { message: 'The model backend sent a malformed answer.' });
  }
  if (hasError(parsed)) throw answeredError(parsed, 'The model backend answered with an error');
  return parsed;
}

export class OpenAICompatibleBackend implements ChatBackend {
  readonly kind = 'openai-compatible' as const;
  private readonly agent: Agent;
  private readonly url: string;
  private readonly embeddingsUrl: string;
  private readonly responsesUrl: string;

  constructor(private readonly opts: UpstreamOptions) {
    this.url = chatCompletionsUrl(opts.url);
    this.embeddingsUrl = `${opts.url.replace(/\/+$/, '')}/embeddings`;
    this.responsesUrl = `${opts.url.replace(/\/+$/, '')}/responses`;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connections: 128,
      // headersTimeout bounds the wait for the first byte, bodyTimeout the silence between chunks.
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
  }

  static fromModel(model: ModelConfig, timeoutMs: number): OpenAICompatibleBackend {
    if (!model.upstream_url) throw new Error(`model ${model.id} has no upstream_url`);
    return new OpenAICompatibleBackend({ url: model.upstream_url, apiKey: model.upstream_api_key, timeoutMs });
  }

  describe(): string {
    return `openai-compatible upstream ${new URL(this.url).origin}`;
  }

  async chat({ request: body, stream, signal }: BackendCall): Promise<BackendResult> {
    const res = await this.post(this.url, body, signal, stream ? 'text/event-stream' : 'application/json');
    const contentType = String(res.headers['content-type'] ?? '');
    // Some upstreams ignore `stream: true` and answer JSON: that answer is returned as JSON (the
    // gateway streams it as one chunk and bills it in full). The other way round is a 502.
    if (stream && !/json/i.test(contentType)) return { kind: 'stream', chunks: await startedStream(sseItems(res.body, signal, chatEvent)) };
    if (/event-stream/i.test(contentType)) {
      discard(res.body);
      throw new ApiError('upstream_error', { message: 'The model backend streamed an answer that was asked for as JSON.' });
    }
    return { kind: 'json', body: normaliseCompletion(await readJson(res, signal)) };
  }

  async responses({ request: body, stream, signal }: ResponsesCall): Promise<ResponsesResult> {
    const res = await this.post(this.responsesUrl, body, signal, stream ? 'text/event-stream' : 'application/json');
    const isJson = /json/i.test(String(res.headers['content-type'] ?? ''));
    // The gateway relays a Responses stream as the upstream's own events: an upstream that
    // answers the other way round from what was asked is a 502 either way.
    if (stream === isJson) {
      discard(res.body);
      throw new ApiError('upstream_error', {
        message: `The model backend answered ${isJson ? 'JSON' : 'a stream'} when asked for ${stream ? 'a stream' : 'JSON'}.`,
      });
    }
    if (stream) return { kind: 'stream', events: await startedStream(sseItems(res.body, signal, responsesEvent, lastResponsesEvent)) };
    return { kind: 'json', body: normaliseResponse(await readJson(res, signal)) };
  }

  async embed({ request: body, signal }: EmbedCall): Promise<EmbeddingList> {
    const res = await this.post(this.embeddingsUrl, body, signal, 'application/json');
    return normaliseEmbeddings(await readJson(res, signal), inputsOf(body.input).length);
  }

  /** POSTs JSON upstream: the answer when it is a 2xx, else its error in our catalogue. */
  private async post(url: string, body: unknown, signal: AbortSignal, accept: string) {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, { method: 'POST', headers, body: JSON.stringify(body), signal, dispatcher: this.agent });
    } catch (err) {
      throw transportError(err, signal, 'connect');
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = await readBody(res.body, MAX_ERROR_BYTES, { truncate: true, contentLength: undefined }).catch(() => '');
      const retryAfter = res.headers['retry-after'];
      throw upstreamStatusError(res.statusCode, text, typeof retryAfter === 'string' ? retryAfter : undefined);
    }
    return res;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
