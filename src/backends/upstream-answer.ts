// What an upstream may answer, checked before the gateway sees it. The gateway trusts a backend's
// data (it bills from it and sends it on), so an upstream's JSON answer or stream chunk is
// normalised here into exactly the shapes of backend.ts, or refused as a 502: a choice that is
// not an object, a message that is missing, usage that is not a plain token count. Only
// openai-compatible.ts calls this; the simulator builds well-formed data itself.
import { ApiError } from '../errors.ts';
import type { ChatChunk, ChatCompletion, EmbeddingList, ResponseBody, ResponsesEvent, ResponsesUsage, Usage } from './backend.ts';

/** More tokens than any model reads or writes in one request: a count above it is nonsense. */
export const MAX_REPORTED_TOKENS = 100_000_000;

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A plain token count: a safe integer from 0 to MAX_REPORTED_TOKENS. */
export const isTokenCount = (v: unknown): v is number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_REPORTED_TOKENS;

/**
 * The upstream's usage when both counts are plain token counts, else null: the gateway then
 * bills by its own count. Negative, fractional, huge or non-numeric counts are never passed on.
 * Like the rest of this file it completes the freshly parsed object in place: a copy of every
 * chunk of every stream was garbage the collector paid for on the hot path.
 */
export function normaliseUsage(raw: unknown): Usage | null {
  if (!isObject(raw) || !isTokenCount(raw.prompt_tokens) || !isTokenCount(raw.completion_tokens)) return null;
  raw.total_tokens = raw.prompt_tokens + raw.completion_tokens;
  return raw as Usage;
}

/** Text content as the SDKs accept it in an answer: a string, null, absent, or content parts. */
const isContent = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string' || Array.isArray(v);

const unixSecondsOr = (v: unknown): number =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : Math.floor(Date.now() / 1000);

const finishReason = (v: unknown): string | null => (typeof v === 'string' ? v : null);

const indexOr = (v: unknown, position: number): number => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : position);

/** Tool calls as the SDKs read them: a list of objects, each with a function object (others dropped). */
function toolCalls(holder: Obj): void {
  const calls = holder.tool_calls;
  if (calls === undefined || calls === null) return;
  if (!Array.isArray(calls)) throw malformed('tool calls that are not a list');
  if (calls.every((c) => isObject(c) && (c.function === undefined || isObject(c.function)))) return;
  holder.tool_calls = calls.filter((c) => isObject(c) && (c.function === undefined || isObject(c.function)));
}

const malformed = (what: string) => new ApiError('upstream_error', { message: `The model backend sent a malformed answer (${what}).` });

/** A complete JSON answer; throws a 502 unless every choice is an object with a message. */
export function normaliseCompletion(raw: unknown): ChatCompletion {
  if (!isObject(raw)) throw malformed('not an object');
  const choices = raw.choices;
  if (!Array.isArray(choices)) throw malformed('no choices');
  for (let i = 0; i < choices.length; i++) {
    const c: unknown = choices[i];
    if (!isObject(c) || !isObject(c.message)) throw malformed('a choice without a message');
    const message = c.message;
    if (!isContent(message.content)) throw malformed('message content is neither text nor null');
    if (typeof message.role !== 'string') message.role = 'assistant';
    message.content ??= null;
    toolCalls(message);
    c.index = indexOr(c.index, i);
    c.finish_reason = finishReason(c.finish_reason);
  }
  return completed(raw, 'chat.completion') as ChatCompletion;
}

/**
 * One parsed stream event as a chunk. A choice that is not an object carries nothing and is
 * dropped; a chunk that is not an object, or whose choices or delta content are of the wrong
 * type, is a 502 (the stream ends with an error event).
 */
export function normaliseChunk(raw: unknown): ChatChunk {
  if (!isObject(raw)) throw malformed('a stream event that is not an object');
  let choices = raw.choices ?? [];
  if (!Array.isArray(choices)) throw malformed('stream choices that are not a list');
  let dropped = false;
  for (let i = 0; i < choices.length; i++) {
    const c: unknown = choices[i];
    if (!isObject(c)) {
      dropped = true;
      continue;
    }
    if (!isObject(c.delta)) c.delta = {};
    if (!isContent((c.delta as Obj).content)) throw malformed('delta content is neither text nor null');
    toolCalls(c.delta as Obj);
    c.index = indexOr(c.index, i);
    c.finish_reason = finishReason(c.finish_reason);
  }
  if (dropped) choices = choices.filter(isObject);
  raw.choices = choices;
  return completed(raw, 'chat.completion.chunk') as ChatChunk;
}

/** The fields every answer and chunk has, set where the upstream left them out or got them wrong. */
function completed(raw: Obj, object: string): Obj {
  if (typeof raw.id !== 'string') raw.id = '';
  raw.object = object;
  raw.created = unixSecondsOr(raw.created);
  if (typeof raw.model !== 'string') raw.model = '';
  raw.usage = normaliseUsage(raw.usage);
  return raw;
}

/**
 * An embeddings answer: one embedding per input (a list of numbers, or base64 text), each with
 * its index; usage kept only when its prompt_tokens is a plain token count.
 */
export function normaliseEmbeddings(raw: unknown, inputs: number): EmbeddingList {
  if (!isObject(raw) || !Array.isArray(raw.data)) throw malformed('no embeddings');
  if (raw.data.length !== inputs) throw malformed(`${raw.data.length} embeddings for ${inputs} inputs`);
  for (let i = 0; i < raw.data.length; i++) {
    const e: unknown = raw.data[i];
    if (!isObject(e)) throw malformed('an embedding that is not an object');
    const v = e.embedding;
    if (!(typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)))))
      throw malformed('an embedding that is neither numbers nor base64');
    e.object = 'embedding';
    e.index = indexOr(e.index, i);
  }
  raw.object = 'list';
  if (typeof raw.model !== 'string') raw.model = '';
  const usage = raw.usage;
  raw.usage =
    isObject(usage) && isTokenCount(usage.prompt_tokens) ? { prompt_tokens: usage.prompt_tokens, total_tokens: usage.prompt_tokens } : null;
  return raw as EmbeddingList;
}

/** A Response object: `output` must be a list; usage is kept only when both counts are plain token counts. */
export function normaliseResponse(raw: unknown): ResponseBody {
  if (!isObject(raw)) throw malformed('a response that is not an object');
  if (!Array.isArray(raw.output)) throw malformed('a response without an output list');
  const usage = raw.usage;
  if (isObject(usage) && isTokenCount(usage.input_tokens) && isTokenCount(usage.output_tokens)) {
    usage.total_tokens = usage.input_tokens + usage.output_tokens;
    raw.usage = usage as ResponsesUsage;
  } else {
    raw.usage = null;
  }
  return raw as ResponseBody;
}

/** A Responses API stream event: an object with a string `type`; the response it carries, normalised. */
export function normaliseResponsesEvent(raw: unknown): ResponsesEvent {
  if (!isObject(raw) || typeof raw.type !== 'string') throw malformed('a stream event without a type');
  if (raw.response !== undefined) raw.response = normaliseResponse(raw.response);
  return raw as ResponsesEvent;
}
