// A JSON chat answer: billed at the backend's usage (or our count of what it produced), then sent
// with our id, the model as the client named it, and the cost.
import type { FastifyReply } from 'fastify';
import type { ChatCompletion, Usage } from '../backends/backend.ts';
import type { Meter } from '../billing/metered-request.ts';
import { countTextWithin } from '../lib/tokens.ts';
import { completionIdFor } from '../usage/usage-store.ts';
import { producedText, validUsage, withCost } from './chat-usage.ts';

export async function answerJson(
  reply: FastifyReply,
  meter: Meter,
  answer: ChatCompletion,
  base: { promptTokens: number; completionTokens: number; maxOutput: number },
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
  // The answer is this request's own (parsed for it), so it is completed in place, not copied.
  answer.id = completionIdFor(meter.ctx.requestId);
  answer.model = meter.ctx.model.id;
  answer.usage = withCost(usage, charged);
  return reply.send(answer);
}
