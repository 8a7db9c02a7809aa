// A backend that forwards to any OpenAI-compatible HTTP API (OpenAI, OpenRouter, vLLM, Ollama,
// llama.cpp …) over a keep-alive undici pool. It always asks for usage in streams, maps the
// upstream's failures to our catalogue, and stops the upstream call when our client goes away.
import { createParser } from 'eventsource-parser';
import { Agent, request, errors as undiciErrors } from 'undici';
import type { ModelConfig } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { BackendCall, BackendResult, ChatBackend, ChatChunk, ChatCompletion } from './backend.ts';

type UpstreamOptions = { url: string; apiKey: string | undefined; timeoutMs: number };

/** Joins a base URL (with or without `/v1`) and the chat completions path. */
export function chatCompletionsUrl(base: string): string {
  return `${base.replace(/\/+$/, '')}/chat/completions`;
}

const isAbort = (err: unknown): boolean =>
  err instanceof Error && (err.name === 'AbortError' || err instanceof undiciErrors.RequestAbortedError);

/** Maps a failure to reach or read the upstream to 502/504; an abort is re-thrown as is. */
function transportError(err: unknown, signal: AbortSignal): never | ApiError {
  if (signal.aborted || isAbort(err)) throw err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new ApiError('upstream_timeout');
  }
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string }).code;
  return new ApiError('upstream_error', { message: `The model backend could not be reached${code ? ` (${code})` : ''}.` });
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

async function* sseChunks(body: AsyncIterable<Buffer>, signal: AbortSignal): AsyncGenerator<ChatChunk> {
  const queue: ChatChunk[] = [];
  let done = false;
  let failure: ApiError | undefined;
  const parser = createParser({
    onEvent(event) {
      if (done) return;
      if (event.data === '[DONE]') {
        done = true;
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.data);
      } catch {
        failure = new ApiError('upstream_error', { message: 'The model backend sent a malformed stream event.' });
        return;
      }
      const obj = parsed as { error?: { message?: unknown } } & ChatChunk;
      if (obj.error) {
        failure = new ApiError('upstream_error', {
          message:
            typeof obj.error.message === 'string'
              ? `The model backend failed mid-stream: ${obj.error.message}`
              : 'The model backend failed mid-stream.',
        });
        return;
      }
      queue.push(obj);
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const buf of body) {
      parser.feed(decoder.decode(buf, { stream: true }));
      while (queue.length) yield queue.shift() as ChatChunk;
      if (failure) throw failure;
      // After [DONE], keep reading to the end of the body rather than returning: leaving the
      // loop early destroys the body with an AbortError (and its stack trace) on every stream.
    }
  } catch (err) {
    throw transportError(err, signal);
  }
  parser.feed(decoder.decode());
  while (queue.length) yield queue.shift() as ChatChunk;
  if (failure) throw failure;
  // A stream that ends without [DONE] was cut off by the upstream.
  if (!done) throw new ApiError('upstream_error', { message: 'The model backend closed the stream before it was complete.' });
}

export class OpenAICompatibleBackend implements ChatBackend {
  readonly kind = 'openai-compatible' as const;
  private readonly agent: Agent;
  private readonly url: string;

  constructor(private readonly opts: UpstreamOptions) {
    this.url = chatCompletionsUrl(opts.url);
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
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
    };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(this.url, { method: 'POST', headers, body: JSON.stringify(body), signal, dispatcher: this.agent });
    } catch (err) {
      throw transportError(err, signal);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = await res.body.text().catch(() => '');
      const retryAfter = res.headers['retry-after'];
      throw upstreamStatusError(res.statusCode, text, typeof retryAfter === 'string' ? retryAfter : undefined);
    }
    if (!stream) {
      let parsed: ChatCompletion;
      try {
        parsed = (await res.body.json()) as ChatCompletion;
      } catch (err) {
        if (err instanceof SyntaxError) throw new ApiError('upstream_error', { message: 'The model backend sent a malformed answer.' });
        throw transportError(err, signal);
      }
      if (!parsed || !Array.isArray(parsed.choices))
        throw new ApiError('upstream_error', { message: 'The model backend sent an answer without choices.' });
      return { kind: 'json', body: parsed };
    }
    return { kind: 'stream', chunks: sseChunks(res.body, signal) };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
