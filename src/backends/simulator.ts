// The built-in simulator: the default backend when no upstream is configured, and always the
// backend of sk_test_ keys. It answers deterministically from the request (same request, same
// answer: simulator-answer.ts decides it, tool calls and structured outputs included), streams as
// real upstreams stream, counts usage with the real tokenizer and honours max_tokens and stop.
// Magic prompts (documented in the README) make it fail the ways real backends fail, so
// integrators can test their error handling without a paid model.
import { setImmediate as nextTick, setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../errors.ts';
import { countPromptTokens, o200k } from '../lib/tokens.ts';
import type { BackendCall, BackendResult, ChatBackend, ChatChunk, ChatCompletion, EmbedCall, EmbeddingList } from './backend.ts';
import { conversationHash, lastUserText, logprobsOf, type SimulatedChoice, simulateChoices } from './simulator-answer.ts';
import { simulateEmbeddings } from './simulator-embeddings.ts';

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
const ARGUMENT_CHARS_PER_CHUNK = 8;

function splitIntoPieces(text: string): string[] {
  const words = text.split(/(?<=\s)/);
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_CHUNK) pieces.push(words.slice(i, i + WORDS_PER_CHUNK).join(''));
  return pieces.length ? pieces : [''];
}

function splitArguments(args: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < args.length; i += ARGUMENT_CHARS_PER_CHUNK) pieces.push(args.slice(i, i + ARGUMENT_CHARS_PER_CHUNK));
  return pieces;
}

type Delta = ChatChunk['choices'][number]['delta'];
type Step = { delta: Delta; finish: string | null; logprobs?: unknown };

/** One choice as a real upstream streams it: the role, then pieces of text or of the call's arguments, then the finish. */
function stepsOf(choice: SimulatedChoice, top: number | undefined): Step[] {
  const call = choice.toolCalls?.[0];
  if (call) {
    return [
      {
        delta: {
          role: 'assistant',
          content: null,
          tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }],
        },
        finish: null,
      },
      ...splitArguments(call.function.arguments).map((piece) => ({
        delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] },
        finish: null,
      })),
      { delta: {}, finish: choice.finishReason },
    ];
  }
  return [
    { delta: { role: 'assistant', content: '' }, finish: null },
    ...splitIntoPieces(choice.content ?? '').map((piece) => ({
      delta: { content: piece },
      finish: null,
      ...(top !== undefined ? { logprobs: { content: logprobsOf(o200k.encode(piece), top), refusal: null } } : {}),
    })),
    { delta: {}, finish: choice.finishReason },
  ];
}

export class SimulatorBackend implements ChatBackend {
  readonly kind = 'simulator' as const;

  describe(): string {
    return 'built-in simulator';
  }

  embed(call: EmbedCall): Promise<EmbeddingList> {
    return simulateEmbeddings(call);
  }

  async chat({ request, stream, signal, promptTokens }: BackendCall): Promise<BackendResult> {
    const said = lastUserText(request.messages);
    for (const [magic, error] of MAGIC_ERRORS) if (said.includes(magic)) throw error();
    const slow = said.includes(MAGIC.slow);
    const cutoff = said.includes(MAGIC.cutoff);
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
    const h = conversationHash(request.messages);
    const choices = simulateChoices(request, maxTokens, h);
    // The gateway has counted the prompt already (in slices, off the event loop's critical path).
    const usage = {
      prompt_tokens: promptTokens ?? countPromptTokens(request),
      completion_tokens: choices.reduce((sum, c) => sum + c.tokens, 0),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = `chatcmpl-sim${h.toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const top = request.logprobs === true ? (typeof request.top_logprobs === 'number' ? request.top_logprobs : 0) : undefined;

    if (!stream) {
      if (cutoff) throw new ApiError('upstream_error', { message: `Simulated connection loss (magic prompt ${MAGIC.cutoff}).` });
      if (slow) await sleep(SLOW_CHUNK_DELAY_MS * 4, undefined, { signal });
      const body: ChatCompletion = {
        id,
        object: 'chat.completion',
        created,
        model: request.model,
        choices: choices.map((c, index) => ({
          index,
          message: { role: 'assistant', content: c.content, refusal: null, ...(c.toolCalls ? { tool_calls: c.toolCalls } : {}) },
          logprobs: c.logprobs ? { content: c.logprobs, refusal: null } : null,
          finish_reason: c.finishReason,
        })),
        usage,
        system_fingerprint: 'bizora-simulator',
      };
      return { kind: 'json', body };
    }

    const chunk = (index: number, step: Step): ChatChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: request.model,
      system_fingerprint: 'bizora-simulator',
      choices: [{ index, delta: step.delta, logprobs: step.logprobs ?? null, finish_reason: step.finish }],
    });
    // The choices' steps interleaved, as upstreams send n choices.
    const perChoice = choices.map((c) => stepsOf(c, top));
    const longest = Math.max(...perChoice.map((steps) => steps.length));
    async function* chunks(): AsyncGenerator<ChatChunk> {
      for (let i = 0; i < longest; i++) {
        if (i > 0) {
          if (slow) await sleep(SLOW_CHUNK_DELAY_MS, undefined, { signal });
          else await nextTick(undefined, { signal });
        }
        if (cutoff && i >= Math.min(3, longest - 2)) {
          throw new ApiError('upstream_error', { message: `Simulated connection loss mid-stream (magic prompt ${MAGIC.cutoff}).` });
        }
        for (const [index, steps] of perChoice.entries()) {
          const step = steps[i];
          if (step) yield chunk(index, step);
        }
      }
      if (request.stream_options?.include_usage) yield { ...chunk(0, { delta: {}, finish: null }), choices: [], usage };
    }
    return { kind: 'stream', chunks: chunks() };
  }
}
