// Token counting with a real tokenizer (o200k_base, the encoding of current OpenAI models).
// Used to estimate a prompt before the backend answers (for the hold) and to count output the
// backend did not report (a stream cut short, an upstream without usage).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { GptEncoding } from 'gpt-tokenizer/GptEncoding';

/**
 * The o200k ranks, read from the tiktoken file gpt-tokenizer ships (one `base64 rank` per line)
 * in the form of the library's own generated module: a token is its text when its bytes are
 * UTF-8 that decodes and encodes back to the same bytes, else its bytes. That module,
 * `gpt-tokenizer/encoding/o200k_base`, is 2.2 MB of JavaScript whose parse leaves about 12 MB
 * more in the process than reading the file does (bench/README.md, step 12). A test checks
 * that both give the same table.
 */
export function loadO200kRanks(): (string | number[])[] {
  const file = createRequire(import.meta.url).resolve('gpt-tokenizer/data/o200k_base.tiktoken');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const ranks: (string | number[])[] = [];
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const bytes = Buffer.from(line.slice(0, space), 'base64');
    let text: string | undefined;
    try {
      text = utf8.decode(bytes);
    } catch {}
    // The decoder drops a leading byte-order mark, so such a token does not round-trip.
    ranks[Number(line.slice(space + 1))] = text !== undefined && Buffer.byteLength(text) === bytes.length ? text : [...bytes];
  }
  return ranks;
}

/** The one o200k encoder of the process (the simulator encodes and decodes with it too). */
export const o200k = GptEncoding.getEncodingApi('o200k_base', loadO200kRanks);
const { countTokens } = o200k;

// Per-message framing overhead of the chat format, as OpenAI documents it for its models.
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_REPLY_PRIMER = 3;
// An image part is billed by the upstream by its size, which we cannot see without decoding it;
// a high-detail 1024x1024 image costs 765 tokens on OpenAI's models, so hold for that.
const TOKENS_PER_IMAGE = 765;

// The tokenizer's byte-pair merge is quadratic in the length of one pre-tokenised piece: one
// 100 KB "word" took 7 s. So text is counted in segments, cut where the count cannot change (at a
// space that follows a non-space: no o200k piece runs across one), and a run of more than MAX_RUN
// characters without such a place is cut every MAX_RUN characters. A hard cut can only add a
// token or so per MAX_RUN characters (a slight over-estimate, which is the safe side for a hold);
// ordinary text is counted exactly. Work per character is then bounded and linear.
const MAX_RUN = 128;
const MAX_SEGMENT = 2048;

/** JavaScript's \s (what the o200k pattern splits on), by char code. */
const isSpace = (c: number): boolean =>
  c <= 32
    ? c === 32 || (c >= 9 && c <= 13)
    : c >= 0xa0 &&
      (c === 0xa0 ||
        c === 0x1680 ||
        (c >= 0x2000 && c <= 0x200a) ||
        c === 0x2028 ||
        c === 0x2029 ||
        c === 0x202f ||
        c === 0x205f ||
        c === 0x3000 ||
        c === 0xfeff);

/** The segments `text` is counted in (see MAX_RUN); their concatenation is `text`. */
export function* segments(text: string): Generator<string> {
  let start = 0;
  let runStart = 0; // where the current run without a safe place began
  let safe = -1; // the last safe place in this segment
  for (let i = 1; i < text.length; i++) {
    if (text.charCodeAt(i) === 32 && !isSpace(text.charCodeAt(i - 1))) {
      safe = i;
      runStart = i;
    }
    if (i - start < MAX_SEGMENT && i - runStart < MAX_RUN) continue;
    let cut = safe > start ? safe : i;
    // Never between the two halves of a surrogate pair.
    const c = text.charCodeAt(cut);
    if (cut === i && c >= 0xdc00 && c <= 0xdfff && cut - 1 > start) cut--;
    yield text.slice(start, cut);
    start = cut;
    runStart = cut;
    safe = -1;
  }
  if (start < text.length) yield start === 0 ? text : text.slice(start);
}

/**
 * Counts what `parts` stand for (texts to tokenize, or fixed token counts), stopping as soon as
 * the count exceeds `limit`. It pauses (yields) after each segment, so a caller can give the
 * event loop back on a long input.
 */
function* counting(parts: Iterable<string | number>, limit: number): Generator<void, number> {
  let n = 0;
  for (const part of parts) {
    if (typeof part === 'number') n += part;
    else
      for (const segment of segments(part)) {
        n += countTokens(segment);
        if (n > limit) return n;
        yield;
      }
    if (n > limit) return n;
  }
  return n;
}

function countNow(parts: Iterable<string | number>, limit = Number.POSITIVE_INFINITY): number {
  const run = counting(parts, limit);
  for (;;) {
    const step = run.next();
    if (step.done) return step.value;
  }
}

// The longest a count runs before it gives the event loop back: other requests, streams and
// health checks wait at most this long for a big prompt.
const SLICE_MS = 4;

async function countInSlices(parts: Iterable<string | number>, limit: number): Promise<number> {
  const run = counting(parts, limit);
  let sliceStart = performance.now();
  for (;;) {
    const step = run.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

export const countText = (text: string): number => (text ? countNow([text]) : 0);

/**
 * Tokens of produced text, counted without holding the event loop for long, and only up to
 * `limit` (a result above it means "more than limit").
 */
export const countTextWithin = (text: string, limit: number): Promise<number> => (text ? countInSlices([text], limit) : Promise.resolve(0));

/**
 * The text's first `maxTokens` tokens (all of them when null), encoded segment by segment (see
 * MAX_RUN) and no further than needed: linear in the text, however it is made.
 */
export function firstTokens(text: string, maxTokens: number | null): { text: string; tokens: number[]; truncated: boolean } {
  const tokens: number[] = [];
  for (const segment of segments(text)) {
    for (const t of o200k.encode(segment)) {
      if (maxTokens !== null && tokens.length >= maxTokens) return { text: o200k.decode(tokens), tokens, truncated: true };
      tokens.push(t);
    }
  }
  return { text, tokens, truncated: false };
}

const jsonOf = (v: unknown): string => JSON.stringify(v) ?? '';

function* contentParts(content: unknown): Generator<string | number> {
  if (typeof content === 'string') {
    yield content;
    return;
  }
  if (!Array.isArray(content)) {
    if (content != null) yield jsonOf(content);
    return;
  }
  for (const part of content) {
    if (part && typeof part === 'object') {
      const p = part as { type?: unknown; text?: unknown };
      if (typeof p.text === 'string') yield p.text;
      else if (p.type === 'image_url' || p.type === 'input_image') yield TOKENS_PER_IMAGE;
      else yield jsonOf(part);
    }
  }
}

type PromptBody = { messages: readonly unknown[]; tools?: unknown; functions?: unknown; response_format?: unknown };

/** What a chat prompt is counted from: every message's content, name and tool calls, plus tools and the response format (its schema). */
function* promptParts(body: PromptBody): Generator<string | number> {
  yield TOKENS_PER_REPLY_PRIMER;
  for (const m of body.messages) {
    yield TOKENS_PER_MESSAGE;
    if (!m || typeof m !== 'object') continue;
    const msg = m as { role?: unknown; content?: unknown; name?: unknown; tool_calls?: unknown };
    if (typeof msg.role === 'string') yield 1;
    yield* contentParts(msg.content);
    if (typeof msg.name === 'string') {
      yield msg.name;
      yield 1;
    }
    if (msg.tool_calls) yield jsonOf(msg.tool_calls);
  }
  if (body.tools) yield jsonOf(body.tools);
  if (body.functions) yield jsonOf(body.functions);
  if (body.response_format) yield jsonOf(body.response_format);
}

/** Prompt tokens of a chat request, counted at once (the simulator's usage). */
export const countPromptTokens = (body: PromptBody): number => countNow(promptParts(body));

/**
 * Prompt tokens of a chat request for its hold: counted in slices that give the event loop back,
 * and only up to `limit` (the model's context window); a result above it means "more than limit".
 */
export const countPromptTokensWithin = (body: PromptBody, limit: number): Promise<number> => countInSlices(promptParts(body), limit);
