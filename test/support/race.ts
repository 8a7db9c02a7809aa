// `n` requests at once against one balance, half JSON and half streamed (each stream read to the
// end), through the real openai client: how concurrency tests race for money.
import OpenAI from 'openai';
import { grantCredit } from '../../src/billing/ledger.ts';
import { costMicros } from '../../src/billing/pricing.ts';
import type { ModelConfig } from '../../src/config.ts';
import { countPromptTokens } from '../../src/lib/tokens.ts';
import type { Harness } from './harness.ts';

/**
 * A new account whose balance affords exactly `k` of these requests, and a client with its key.
 * The simulator answers more than `maxTokens` tokens, so every request is cut at exactly
 * `maxTokens` and its actual cost equals its hold: the balance affords exactly k, whatever the
 * order in which requests settle.
 */
export async function accountAffording(
  h: Harness,
  k: number,
  model: ModelConfig,
  request: { messages: OpenAI.ChatCompletionMessageParam[]; maxTokens: number },
): Promise<{ accountId: string; client: OpenAI }> {
  const perRequest = costMicros(model.price, countPromptTokens({ messages: request.messages }), request.maxTokens);
  const account = await h.newAccount();
  await h.deps.ledger.run((s) => grantCredit(s, { accountId: account.id, micros: k * perRequest, now: Date.now() }));
  const { key } = await h.newKey(account.id);
  return { accountId: account.id, client: new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 }) };
}

export type Race = {
  results: PromiseSettledResult<unknown>[];
  ok: number;
  refused: number;
  other: PromiseSettledResult<unknown> | undefined;
};

export async function raceForBalance(
  client: OpenAI,
  n: number,
  request: { messages: OpenAI.ChatCompletionMessageParam[]; maxTokens: number },
): Promise<Race> {
  const { messages, maxTokens } = request;
  const results = await Promise.allSettled(
    Array.from({ length: n }, async (_, i) => {
      if (i % 2 === 0) return client.chat.completions.create({ model: 'bizora', messages, max_tokens: maxTokens });
      const stream = await client.chat.completions.create({ model: 'bizora', messages, max_tokens: maxTokens, stream: true });
      for await (const _chunk of stream) {
        // read to the end
      }
      return stream;
    }),
  );
  const isRefusal = (r: PromiseSettledResult<unknown>) =>
    r.status === 'rejected' && r.reason instanceof OpenAI.APIError && r.reason.status === 402;
  return {
    results,
    ok: results.filter((r) => r.status === 'fulfilled').length,
    refused: results.filter(isRefusal).length,
    other: results.find((r) => r.status === 'rejected' && !isRefusal(r)),
  };
}
