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

export const countText = (text: string): number => (text ? countTokens(text) : 0);

function countContent(content: unknown): number {
  if (typeof content === 'string') return countText(content);
  if (!Array.isArray(content)) return content == null ? 0 : countText(JSON.stringify(content));
  let n = 0;
  for (const part of content) {
    if (part && typeof part === 'object') {
      const p = part as { type?: unknown; text?: unknown };
      if (typeof p.text === 'string') n += countText(p.text);
      else if (p.type === 'image_url' || p.type === 'input_image') n += TOKENS_PER_IMAGE;
      else n += countText(JSON.stringify(part));
    }
  }
  return n;
}

/** Prompt tokens of a chat request: every message's content, name and tool calls, plus tools. */
export function countPromptTokens(body: { messages: readonly unknown[]; tools?: unknown; functions?: unknown }): number {
  let n = TOKENS_PER_REPLY_PRIMER;
  for (const m of body.messages) {
    n += TOKENS_PER_MESSAGE;
    if (!m || typeof m !== 'object') continue;
    const msg = m as { role?: unknown; content?: unknown; name?: unknown; tool_calls?: unknown };
    if (typeof msg.role === 'string') n += 1;
    n += countContent(msg.content);
    if (typeof msg.name === 'string') n += countText(msg.name) + 1;
    if (msg.tool_calls) n += countText(JSON.stringify(msg.tool_calls));
  }
  if (body.tools) n += countText(JSON.stringify(body.tools));
  if (body.functions) n += countText(JSON.stringify(body.functions));
  return n;
}
