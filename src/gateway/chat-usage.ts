// The usage a chat answer is billed at: the backend's own count when it is a plain token count,
// else ours, from the text the model produced; and the usage we send back, with its cost.
import type { Usage } from '../backends/backend.ts';
import { isTokenCount } from '../backends/upstream-answer.ts';
import { exactCents } from '../billing/pricing.ts';

/** Text the model produced in a message or delta, to count tokens the backend did not report. */
export function producedText(part: { content?: unknown; refusal?: unknown; tool_calls?: unknown } | undefined): string {
  if (!part) return '';
  let text = typeof part.content === 'string' ? part.content : '';
  if (typeof part.refusal === 'string') text += part.refusal;
  if (Array.isArray(part.tool_calls)) {
    for (const tc of part.tool_calls as Array<{ function?: { name?: unknown; arguments?: unknown } }>) {
      if (typeof tc?.function?.name === 'string') text += tc.function.name;
      if (typeof tc?.function?.arguments === 'string') text += tc.function.arguments;
    }
  }
  return text;
}

export const validUsage = (u: unknown): u is Usage =>
  !!u && typeof u === 'object' && isTokenCount((u as Usage).prompt_tokens) && isTokenCount((u as Usage).completion_tokens);

// Produced text is kept to count it when the backend reports no usage; past this many characters
// the answer is far beyond any output cap, so it is billed at the cap and no more is kept.
export const MAX_PRODUCED_CHARS = 4 * 1024 * 1024;

export const withCost = (usage: Usage, chargedMicros: number) => ({
  ...usage,
  total_tokens: usage.prompt_tokens + usage.completion_tokens,
  cost_cents: exactCents(chargedMicros),
});
