// A JSON chat answer: billed at the backend's usage (or our count of what it produced), then sent
// as the API it came in by presents it (with our id, the model as the client named it, the cost).
import type { FastifyReply } from 'fastify';
import type { ChatCompletion, Usage } from '../backends/backend.ts';
import type { Meter } from '../billing/metered-request.ts';
import { countTextWithin } from '../lib/tokens.ts';
import { producedText, validUsage, withCost } from './chat-usage.ts';

export async function answerJson(
  reply: FastifyReply,
  meter: Meter,
  answer: ChatCompletion,
  base: { promptTokens: number; completionTokens: number; maxOutput: number },
  present: (answer: ChatCompletion, usage: Usage & { cost_cents: number }) => unknown,
) {
  const usage: Usage = validUsage(answer.usage)
    ? answer.usage
    : {
        prompt_tokens: base.promptTokens,
        completion_tokens: await countTextWithin(answer.choices.map((c) => producedText(c.message)).join(''), base.maxOutput),
        total_tokens: 0,
      };
  const finishReason = answer.choices[0]?.finish_reason ?? null;
  const charged = await meter.close({
    status: 'succeeded',
    httpStatus: 200,
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    bill: true,
    finishReason,
  });
  return reply.send(present(answer, withCost(usage, charged)));
}
