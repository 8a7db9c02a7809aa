// Token counting with a real tokenizer (o200k_base, the encoding of current OpenAI models).
// Used to estimate a prompt before the backend answers (for the hold) and to count output the
// backend did not report (a stream cut short, an upstream without usage).
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

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
