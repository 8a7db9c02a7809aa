import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { costMicros } from '../src/billing/pricing.ts';
import { countPromptTokens, countText } from '../src/lib/tokens.ts';
import { assertBooksBalance, eventually, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream } from './support/mock-upstream.ts';

const ask = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content }];

// What this file tests is the HTTP and streaming layer, not storage (the ledger's operations are
// the same code on both databases, and ledger.test.ts and concurrency.test.ts run them on both): SQLite.
for (const kind of ['sqlite'] as const) {
  describe(`an openai-compatible upstream behind the gateway (${kind})`, () => {
    let h: Harness;
    let mock: MockUpstream;
    let account: { id: string };
    let key: string;
    let client: OpenAI;
    const model = testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1', upstream_api_key: 'upstream-secret' });

    before(async () => {
      mock = await startMockUpstream();
      h = await startHarness(kind, { models: [{ ...model, upstream_url: mock.url }], env: { BIZORA_UPSTREAM_TIMEOUT_MS: '1000' } });
      account = await h.newAccount({ cents: 10_000 });
      ({ key } = await h.newKey(account.id));
      client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
    });
    after(async () => {
      await h.close();
      await mock.close();
    });

    const lastUsage = () =>
      h.deps.db
        .selectFrom('usage_records')
        .selectAll()
        .where('account_id', '=', account.id)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();

    // After every way a request can end: the books balance and no hold is left open.
    afterEach(() => assertBooksBalance(h));

    test('a JSON request reaches the upstream under its own model name and credentials, billed at its usage', async () => {
      const before = await h.balanceMicros(account.id);
      const c = await client.chat.completions.create({ model: 'bizora', messages: ask('hello'), temperature: 0.2, user: 'u-1' });
      const seen = mock.requests.at(-1);
      assert.equal(seen?.body.model, 'mock-model-1');
      assert.equal(seen?.body.temperature, 0.2);
      assert.equal(seen?.body.user, 'u-1');
      // No limit set by the client: the hold's limit goes upstream in the field OpenAI's models all take.
      assert.equal(seen?.body.max_completion_tokens, model.max_output_tokens);
      assert.equal(seen?.body.max_tokens, undefined);
      assert.equal(seen?.headers.authorization, 'Bearer upstream-secret');
      assert.ok(!JSON.stringify(seen?.headers).includes(key), "the caller's key is not passed upstream");
      assert.equal(c.model, 'bizora');
      assert.equal(c.choices[0]?.message.content, 'Hello from the mock upstream model.');
      const cost = costMicros(model.price, mock.promptTokens, 7);
      assert.equal((c.usage as unknown as { cost_cents: number }).cost_cents, cost / 10_000);
      const afterBal = await h.balanceMicros(account.id);
      assert.equal(before.balance - afterBal.balance, cost);
      assert.equal(afterBal.held, 0);
    });

    test('a stream always asks the upstream for usage, and passes it on only when asked', async () => {
      const plain = await client.chat.completions.create({ model: 'bizora', messages: ask('hello'), stream: true });
      let text = '';
      for await (const chunk of plain) {
        assert.ok(chunk.choices.length > 0, 'no usage chunk the client did not ask for');
        text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, 'Hello from the mock upstream model.');
      assert.deepEqual(mock.requests.at(-1)?.body.stream_options, { include_usage: true });
      assert.equal((await lastUsage()).cost_micros, costMicros(model.price, mock.promptTokens, 7));

      const withUsage = await client.chat.completions.create({
        model: 'bizora',
        messages: ask('hello'),
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: (OpenAI.CompletionUsage & { cost_cents: number }) | undefined;
      for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage as typeof usage;
      assert.equal(usage?.prompt_tokens, mock.promptTokens);
      assert.equal(usage?.cost_cents, costMicros(model.price, mock.promptTokens, 7) / 10_000);
    });

    test("the upstream's 4xx is passed on in OpenAI shape and not billed", async () => {
      const before = await h.balanceMicros(account.id);
      await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: ask('mock:error:400') }), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        const e = err.error as { param: string; code: string; message: string };
        assert.equal(e.param, 'temperature');
        assert.equal(e.code, 'mock_bad_param');
        assert.equal(e.message, 'mock upstream says 400');
        return true;
      });
      assert.deepEqual(await h.balanceMicros(account.id), before);
    });

    test("the upstream refusing our own credentials is a 502, never the caller's 401", async () => {
      await assert.rejects(
        client.chat.completions.create({ model: 'bizora', messages: ask('mock:error:401') }),
        (err) => err instanceof OpenAI.APIError && err.status === 502,
      );
    });

    test("the upstream's 429 is a 429 with its Retry-After", async () => {
      await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: ask('mock:error:429') }), (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.headers?.get('retry-after'), '7');
        return true;
      });
    });

    test("the upstream's 5xx is a 502 upstream_error, released unbilled and recorded as failed", async () => {
      const before = await h.balanceMicros(account.id);
      await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: ask('mock:error:503') }), (err) => {
        assert.ok(err instanceof OpenAI.InternalServerError);
        assert.equal(err.status, 502);
        assert.equal((err.error as { type: string }).type, 'upstream_error');
        return true;
      });
      assert.deepEqual(await h.balanceMicros(account.id), before);
      const u = await lastUsage();
      assert.equal(u.status, 'failed');
      assert.equal(u.cost_micros, 0);
    });

    test('an upstream that never answers times out as a 504 and the upstream call is dropped', async () => {
      const before = await h.balanceMicros(account.id);
      const aborted = mock.abortedByClient;
      const started = Date.now();
      await assert.rejects(
        client.chat.completions.create({ model: 'bizora', messages: ask('mock:stall') }),
        (err) => err instanceof OpenAI.APIError && err.status === 504,
      );
      assert.ok(Date.now() - started < 5000);
      await eventually(() => mock.abortedByClient > aborted);
      assert.deepEqual(await h.balanceMicros(account.id), before);
    });

    test('a stream the upstream cuts off ends with an error event and bills the prompt and the tokens produced', async () => {
      const before = await h.balanceMicros(account.id);
      const messages = ask('mock:cut');
      const stream = await client.chat.completions.create({ model: 'bizora', messages, stream: true });
      let text = '';
      await assert.rejects(async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      }, OpenAI.APIError);
      assert.equal(text, 'Hello from the');
      const expected = costMicros(model.price, countPromptTokens({ messages }), countText(text));
      assert.equal(before.balance - (await h.balanceMicros(account.id)).balance, expected);
      const u = await lastUsage();
      assert.equal(u.status, 'failed');
      assert.equal(u.cost_micros, expected);
    });

    test('a client that goes away mid-stream stops the upstream and pays for the prompt and what was produced', async () => {
      const before = await h.balanceMicros(account.id);
      const aborted = mock.abortedByClient;
      const controller = new AbortController();
      const messages = ask('mock:slow');
      const stream = await client.chat.completions.create({ model: 'bizora', messages, stream: true }, { signal: controller.signal });
      let received = '';
      // The SDK ends the iteration quietly when its own signal aborts it.
      for await (const chunk of stream) {
        received += chunk.choices[0]?.delta.content ?? '';
        if (received.split(' ').length > 3) controller.abort();
      }
      assert.ok(received.length > 0 && received.split(' ').length < 10, received);
      await eventually(() => mock.abortedByClient > aborted);
      await eventually(async () => (await h.balanceMicros(account.id)).held === 0);
      const u = await lastUsage();
      assert.equal(u.status, 'cancelled');
      assert.ok(u.completion_tokens >= countText(received), `${u.completion_tokens} tokens billed, ${countText(received)} received`);
      assert.ok(u.completion_tokens < 20 * 2, 'far fewer than the full answer');
      const expected = costMicros(model.price, countPromptTokens({ messages }), u.completion_tokens);
      assert.equal(u.cost_micros, expected);
      assert.equal(before.balance - (await h.balanceMicros(account.id)).balance, expected);
    });

    test('an upstream that reports no usage is billed by our own count', async () => {
      const messages = ask('mock:no-usage');
      const c = await client.chat.completions.create({ model: 'bizora', messages });
      const expected = costMicros(model.price, countPromptTokens({ messages }), countText('Hello from the mock upstream model.'));
      assert.equal((c.usage as unknown as { cost_cents: number }).cost_cents, expected / 10_000);
    });
  });
}
