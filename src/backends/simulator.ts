// The built-in simulator: the default backend when no upstream is configured, and always the
// backend of sk_test_ keys. It answers deterministically from the request (same request, same
// text), streams in several chunks, counts usage with the real tokenizer and honours max_tokens.
// Magic prompts (documented in the README) make it fail the ways real backends fail, so
// integrators can test their error handling without a paid model.
import { setImmediate as nextTick, setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../errors.ts';
import { countPromptTokens, o200k } from '../lib/tokens.ts';
import type { BackendCall, BackendResult, ChatBackend, ChatChunk, ChatCompletion, ChatMessage } from './backend.ts';

export const MAGIC = {
  badRequest: '[bizora:bad_request]',
  unauthorized: '[bizora:unauthorized]',
  insufficientBalance: '[bizora:insufficient_balance]',
  forbidden: '[bizora:forbidden]',
  rateLimit: '[bizora:rate_limit]',
  internalError: '[bizora:internal_error]',
  serverError: '[bizora:server_error]',
  timeout: '[bizora:timeout]',
  slow: '[bizora:slow]',
  cutoff: '[bizora:cutoff]',
} as const;

/**
 * The errors magic prompts produce, each exactly as the real one is shaped (the 401 and 402 bodies
 * byte for byte), so an integrator's handling of it can be tested with an sk_test_ key.
 */
const MAGIC_ERRORS: ReadonlyArray<[string, () => ApiError]> = [
  [
    MAGIC.badRequest,
    () => new ApiError('invalid_request', { param: 'messages', message: `Simulated invalid request (magic prompt ${MAGIC.badRequest}).` }),
  ],
  [MAGIC.unauthorized, () => new ApiError('invalid_api_key')],
  [MAGIC.insufficientBalance, () => new ApiError('insufficient_balance', { details: { balance_before_cents: 50, cost_cents: 100 } })],
  [MAGIC.forbidden, () => new ApiError('permission_denied', { message: `Simulated permission error (magic prompt ${MAGIC.forbidden}).` })],
  [
    MAGIC.rateLimit,
    () =>
      new ApiError('rate_limited', { message: `Simulated rate limit (magic prompt ${MAGIC.rateLimit}).`, headers: { 'retry-after': '1' } }),
  ],
  [MAGIC.internalError, () => new ApiError('internal_error', { message: `Simulated server error (magic prompt ${MAGIC.internalError}).` })],
  [MAGIC.serverError, () => new ApiError('upstream_error', { message: `Simulated backend failure (magic prompt ${MAGIC.serverError}).` })],
  [MAGIC.timeout, () => new ApiError('upstream_timeout', { message: `Simulated backend timeout (magic prompt ${MAGIC.timeout}).` })],
];

const SLOW_CHUNK_DELAY_MS = 250;
const WORDS_PER_CHUNK = 3;

const FILLER = [
  'Bizora routes each request to the model backend its operator configured.',
  'Every request is held against the prepaid balance before it reaches a model.',
  'The final answer carries its usage and its cost in cents.',
  'Test keys are answered by this simulator and are never billed.',
  'Streaming answers end with a data: [DONE] line, as OpenAI clients expect.',
  'Revoked keys are refused on their very next request.',
];

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join(' ');
  }
  return '';
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === 'user') return textOf(messages[i]?.content);
  return textOf(messages.at(-1)?.content);
}

/** FNV-1a: a small, stable hash so the same request always picks the same answer. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The hash of a conversation: each message's role, length and first 1,024 characters of text.
 * Bounded: hashing a whole 7 MiB prompt (and serialising it first) held the event loop ~60 ms.
 */
function conversationHash(messages: readonly ChatMessage[]): number {
  let h = fnv1a(String(messages.length));
  for (const m of messages.slice(-64)) {
    const text = textOf(m.content);
    h = fnv1a(`${m.role}:${text.length}:${text.slice(0, 1024)}`, h);
  }
  return h;
}

function composeAnswer(messages: readonly ChatMessage[], h: number, jsonMode: boolean): string {
  // Only the start of what was said is quoted: no work here grows with the size of the prompt.
  const said = lastUserText(messages).slice(0, 1024).replace(/\s+/g, ' ').trim();
  const excerpt = said.length > 120 ? `${said.slice(0, 117)}...` : said;
  const extra = [FILLER[h % FILLER.length], FILLER[(h >>> 8) % FILLER.length]].filter((s, i, a) => a.indexOf(s) === i);
  const text = `This is the Bizora simulator. You said: "${excerpt}". ${extra.join(' ')}`;
  return jsonMode ? JSON.stringify({ simulated: true, answer: text }) : text;
}

/** The answer limited to maxTokens tokens, and whether it was cut. */
function limit(text: string, maxTokens: number | null): { text: string; tokens: number; truncated: boolean } {
  const tokens = o200k.encode(text);
  if (maxTokens === null || tokens.length <= maxTokens) return { text, tokens: tokens.length, truncated: false };
  return { text: o200k.decode(tokens.slice(0, maxTokens)), tokens: maxTokens, truncated: true };
}

function splitIntoPieces(text: string): string[] {
  const words = text.split(/(?<=\s)/);
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_CHUNK) pieces.push(words.slice(i, i + WORDS_PER_CHUNK).join(''));
  return pieces.length ? pieces : [''];
}

export class SimulatorBackend implements ChatBackend {
  readonly kind = 'simulator' as const;

  describe(): string {
    return 'built-in simulator';
  }

  async chat({ request, stream, signal, promptTokens }: BackendCall): Promise<BackendResult> {
    const said = lastUserText(request.messages);
    for (const [magic, error] of MAGIC_ERRORS) if (said.includes(magic)) throw error();
    const slow = said.includes(MAGIC.slow);
    const cutoff = said.includes(MAGIC.cutoff);
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
    const h = conversationHash(request.messages);
    const answer = limit(composeAnswer(request.messages, h, request.response_format?.type === 'json_object'), maxTokens);
    const finishReason = answer.truncated ? 'length' : 'stop';
    // The gateway has counted the prompt already (in slices, off the event loop's critical path).
    const usage = { prompt_tokens: promptTokens ?? countPromptTokens(request), completion_tokens: answer.tokens, total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = `chatcmpl-sim${h.toString(36)}`;
    const created = Math.floor(Date.now() / 1000);

    if (!stream) {
      if (cutoff) throw new ApiError('upstream_error', { message: `Simulated connection loss (magic prompt ${MAGIC.cutoff}).` });
      if (slow) await sleep(SLOW_CHUNK_DELAY_MS * 4, undefined, { signal });
      const body: ChatCompletion = {
        id,
        object: 'chat.completion',
        created,
        model: request.model,
        choices: [
          { index: 0, message: { role: 'assistant', content: answer.text, refusal: null }, logprobs: null, finish_reason: finishReason },
        ],
        usage,
        system_fingerprint: 'bizora-simulator',
      };
      return { kind: 'json', body };
    }

    const chunk = (delta: ChatChunk['choices'][number]['delta'], finish: string | null): ChatChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: request.model,
      system_fingerprint: 'bizora-simulator',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const pieces = splitIntoPieces(answer.text);
    async function* chunks(): AsyncGenerator<ChatChunk> {
      yield chunk({ role: 'assistant', content: '' }, null);
      for (let i = 0; i < pieces.length; i++) {
        if (slow) await sleep(SLOW_CHUNK_DELAY_MS, undefined, { signal });
        else await nextTick(undefined, { signal });
        if (cutoff && i >= Math.min(2, pieces.length - 1)) {
          throw new ApiError('upstream_error', { message: `Simulated connection loss mid-stream (magic prompt ${MAGIC.cutoff}).` });
        }
        yield chunk({ content: pieces[i] ?? '' }, null);
      }
      yield chunk({}, finishReason);
      if (request.stream_options?.include_usage) yield { ...chunk({}, null), choices: [], usage };
    }
    return { kind: 'stream', chunks: chunks() };
  }
}
