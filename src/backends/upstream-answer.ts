// What an upstream may answer, checked before the gateway sees it. The gateway trusts a backend's
// data (it bills from it and sends it on), so an upstream's JSON answer or stream chunk is
// normalised here into exactly the shapes of backend.ts, or refused as a 502: a choice that is
// not an object, a message that is missing, usage that is not a plain token count. Only
// openai-compatible.ts calls this; the simulator builds well-formed data itself.
import { ApiError } from '../errors.ts';
import type { ChatChunk, ChatCompletion, Usage } from './backend.ts';

/** More tokens than any model reads or writes in one request: a count above it is nonsense. */
export const MAX_REPORTED_TOKENS = 100_000_000;

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const isTokenCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_REPORTED_TOKENS;

/**
 * The upstream's usage when both counts are plain token counts, else null: the gateway then
 * bills by its own count. Negative, fractional, huge or non-numeric counts are never passed on.
 */
export function normaliseUsage(raw: unknown): Usage | null {
  if (!isObject(raw) || !isTokenCount(raw.prompt_tokens) || !isTokenCount(raw.completion_tokens)) return null;
  return {
    ...raw,
    prompt_tokens: raw.prompt_tokens,
    completion_tokens: raw.completion_tokens,
    total_tokens: raw.prompt_tokens + raw.completion_tokens,
  };
}

/** Text content as the SDKs accept it in an answer: a string, null, absent, or content parts. */
const isContent = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string' || Array.isArray(v);

const unixSecondsOr = (v: unknown): number =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : Math.floor(Date.now() / 1000);

const finishReason = (v: unknown): string | null => (typeof v === 'string' ? v : null);

const indexOr = (v: unknown, position: number): number => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : position);

const malformed = (what: string) => new ApiError('upstream_error', { message: `The model backend sent a malformed answer (${what}).` });

/** A complete JSON answer; throws a 502 unless every choice is an object with a message. */
export function normaliseCompletion(raw: unknown): ChatCompletion {
  if (!isObject(raw)) throw malformed('not an object');
  if (!Array.isArray(raw.choices)) throw malformed('no choices');
  const choices = raw.choices.map((c: unknown, i): ChatCompletion['choices'][number] => {
    if (!isObject(c) || !isObject(c.message)) throw malformed('a choice without a message');
    if (!isContent(c.message.content)) throw malformed('message content is neither text nor null');
    const message = {
      ...c.message,
      role: typeof c.message.role === 'string' ? c.message.role : 'assistant',
      content: (c.message.content ?? null) as string | null,
    };
    return { ...c, index: indexOr(c.index, i), message, finish_reason: finishReason(c.finish_reason) };
  });
  return {
    ...raw,
    id: typeof raw.id === 'string' ? raw.id : '',
    object: 'chat.completion',
    created: unixSecondsOr(raw.created),
    model: typeof raw.model === 'string' ? raw.model : '',
    choices,
    usage: normaliseUsage(raw.usage),
  };
}

/**
 * One parsed stream event as a chunk. A choice that is not an object carries nothing and is
 * dropped; a chunk that is not an object, or whose choices or delta content are of the wrong
 * type, is a 502 (the stream ends with an error event).
 */
export function normaliseChunk(raw: unknown): ChatChunk {
  if (!isObject(raw)) throw malformed('a stream event that is not an object');
  if (raw.choices != null && !Array.isArray(raw.choices)) throw malformed('stream choices that are not a list');
  const choices: ChatChunk['choices'] = [];
  for (const [i, c] of ((raw.choices as unknown[] | null | undefined) ?? []).entries()) {
    if (!isObject(c)) continue;
    const delta = isObject(c.delta) ? c.delta : {};
    if (!isContent(delta.content)) throw malformed('delta content is neither text nor null');
    choices.push({ ...c, index: indexOr(c.index, i), delta, finish_reason: finishReason(c.finish_reason) });
  }
  return {
    ...raw,
    id: typeof raw.id === 'string' ? raw.id : '',
    object: 'chat.completion.chunk',
    created: unixSecondsOr(raw.created),
    model: typeof raw.model === 'string' ? raw.model : '',
    choices,
    usage: normaliseUsage(raw.usage),
  };
}
