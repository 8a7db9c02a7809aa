// `n` requests at once against one balance, half JSON and half streamed (each stream read to the
// end), through the real openai client: how concurrency tests race for money.
import OpenAI from 'openai';

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
