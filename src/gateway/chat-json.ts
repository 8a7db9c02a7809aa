// A complete JSON answer: billed at the backend's usage (or our count of what it produced), then
// sent as the API it came in by presents it (with our id, the model as the client named it, the cost).
import type { FastifyReply } from 'fastify';
import type { ChatCompletion, Usage } from '../backends/backend.ts';
import type { Meter } from '../billing/metered-request.ts';
import { countTextWithin } from '../lib/tokens.ts';
import { producedText, validUsage, withCost } from './chat-usage.ts';

/** What an answer tells the bill: the backend's usage (if it reported a valid one), the text produced (asked for only when there is no usage), how it finished. */
export type AnswerReading = { usage: Usage | undefined; produced: () => string; finishReason: string | null };

/** A chat completion's reading. */
export const readCompletion = (answer: ChatCompletion): AnswerReading => ({
  usage: validUsage(answer.usage) ? answer.usage : undefined,
  produced: () => answer.choices.map((c) => producedText(c.message)).join(''),
  finishReason: answer.choices[0]?.finish_reason ?? null,
});

export async function answerJson<J>(
  reply: FastifyReply,
  meter: Meter,
  answer: J,
  base: { promptTokens: number; completionTokens: number; maxOutput: number },
  format: { read(answer: J): AnswerReading; json(answer: J, usage: Usage & { cost_cents: number }): unknown },
) {
  const { usage: reported, produced, finishReason } = format.read(answer);
  const usage: Usage = reported ?? {
    prompt_tokens: base.promptTokens,
    completion_tokens: await countTextWithin(produced(), base.maxOutput),
    total_tokens: 0,
  };
  const charged = await meter.close({
    status: 'succeeded',
    httpStatus: 200,
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    bill: true,
    finishReason,
  });
  return reply.send(format.json(answer, withCost(usage, charged)));
}
