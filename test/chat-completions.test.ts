import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { MAGIC } from '../src/backends/simulator.ts';
import { costMicros } from '../src/billing/pricing.ts';
import { countPromptTokens } from '../src/lib/tokens.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';

const model = testModel();
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me about Bizora.' }];

for (const kind of testDatabaseKinds()) {
  describe(`chat completions with the simulator (${kind})`, () => {
    let h: Harness;
    let account: { id: string };
    let key: string;
    let client: OpenAI;
    before(async () => {
      h = await startHarness(kind, { models: [model] });
      account = await h.newAccount({ cents: 10_000 });
      ({ key } = await h.newKey(account.id));
      client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
    });
    after(() => h.close());

    // After every test: the books balance and no hold is left open.
    afterEach(() => assertBooksBalance(h));

    test('a JSON completion through the openai SDK carries usage and its cost in cents', async () => {
      const before = await h.balanceMicros(account.id);
      const res = await client.chat.completions.create({ model: 'bizora', messages }).withResponse();
      const c = res.data;
      assert.match(res.response.headers.get('x-request-id') ?? '', /^req_/);
      assert.equal(c.object, 'chat.completion');
      assert.equal(c.model, 'bizora');
      assert.match(c.id, /^chatcmpl-/);
      assert.equal(c.choices[0]?.message.role, 'assistant');
      assert.match(c.choices[0]?.message.content ?? '', /Tell me about Bizora/);
      assert.equal(c.choices[0]?.finish_reason, 'stop');
      const usage = c.usage as OpenAI.CompletionUsage & { cost_cents: number };
      assert.equal(usage.prompt_tokens, countPromptTokens({ messages }));
      const expected = costMicros(model.price, usage.prompt_tokens, usage.completion_tokens);
      assert.equal(usage.cost_cents, expected / 10_000);
      const afterBal = await h.balanceMicros(account.id);
      assert.equal(before.balance - afterBal.balance, expected);
      assert.equal(afterBal.held, 0);
    });

    test('the simulator is deterministic: the same request gets the same answer', async () => {
      const a = await client.chat.completions.create({ model: 'bizora', messages });
      const b = await client.chat.completions.create({ model: 'bizora', messages });
      assert.equal(a.choices[0]?.message.content, b.choices[0]?.message.content);
    });

    test('a streamed completion arrives in several chunks and ends with a usage chunk that has the cost', async () => {
      const stream = await client.chat.completions.create({
        model: 'bizora',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let chunks = 0;
      let usage: (OpenAI.CompletionUsage & { cost_cents?: number }) | undefined;
      let finish: string | null = null;
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.model, 'bizora');
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(chunks > 3, `${chunks} chunks`);
      assert.match(text, /Tell me about Bizora/);
      assert.equal(finish, 'stop');
      assert.ok(usage);
      assert.equal(usage.cost_cents, costMicros(model.price, usage.prompt_tokens, usage.completion_tokens) / 10_000);
    });

    test('a stream without include_usage has no usage chunk and ends with [DONE]', async () => {
      const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages, stream: true }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
      const text = await res.text();
      const events = text.split('\n\n').filter(Boolean);
      assert.equal(events.at(-1), 'data: [DONE]');
      for (const e of events.slice(0, -1)) {
        const chunk = JSON.parse(e.slice('data: '.length)) as { choices: unknown[]; usage?: unknown };
        assert.ok(chunk.choices.length > 0);
        assert.equal(chunk.usage, undefined);
      }
    });

    test('the SDK works with the key in X-Api-Key only', async () => {
      const viaHeader = new OpenAI({
        apiKey: 'unused',
        baseURL: h.baseURL,
        maxRetries: 0,
        defaultHeaders: { Authorization: null, 'X-Api-Key': key },
      });
      const c = await viaHeader.chat.completions.create({ model: 'bizora', messages });
      assert.equal(c.object, 'chat.completion');
      const stream = await viaHeader.chat.completions.create({ model: 'bizora', messages, stream: true });
      let n = 0;
      for await (const _ of stream) n++;
      assert.ok(n > 1);
    });

    test('max_tokens is honoured with finish_reason "length"', async () => {
      const c = await client.chat.completions.create({ model: 'bizora', messages, max_tokens: 3 });
      assert.equal(c.choices[0]?.finish_reason, 'length');
      assert.equal(c.usage?.completion_tokens, 3);
      const d = await client.chat.completions.create({ model: 'bizora', messages, max_completion_tokens: 4 });
      assert.equal(d.usage?.completion_tokens, 4);
    });

    test('a max_tokens above the model cap is a 400 naming the parameter', async () => {
      await assert.rejects(client.chat.completions.create({ model: 'bizora', messages, max_tokens: 1_000_000 }), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal((err.error as { param: string }).param, 'max_tokens');
        return true;
      });
    });

    test('an unknown model is a 404 not_found_error', async () => {
      await assert.rejects(client.chat.completions.create({ model: 'gpt-nope', messages }), (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError);
        assert.equal((err.error as { code: string }).code, 'model_not_found');
        return true;
      });
    });

    test('GET /v1/models lists bizora and GET /v1/models/bizora retrieves it', async () => {
      const list = await client.models.list();
      assert.ok(list.data.some((m) => m.id === 'bizora'));
      const m = await client.models.retrieve('bizora');
      assert.equal(m.id, 'bizora');
      assert.equal(m.object, 'model');
      await assert.rejects(client.models.retrieve('nope'), OpenAI.NotFoundError);
    });

    test('GET /v1/key describes the calling key and the account balance in cents', async () => {
      const res = await fetch(`${h.baseURL}/key`, { headers: { authorization: `Bearer ${key}` } });
      const body = (await res.json()) as Record<string, unknown> & { account: { balance_cents: number; id: string } };
      assert.equal(body.mode, 'live');
      assert.equal(body.name, 'test key');
      assert.match(String(body.preview), /^sk_live_.{4}….{4}$/);
      assert.equal(body.account.id, account.id);
      const { balance } = await h.balanceMicros(account.id);
      assert.equal(body.account.balance_cents, Math.floor(balance / 10_000));
      assert.equal(JSON.stringify(body).includes(key), false);
    });

    test('GET /v1/generation returns the usage and cost of an earlier request by id or x-request-id', async () => {
      const res = await client.chat.completions.create({ model: 'bizora', messages }).withResponse();
      const requestId = res.response.headers.get('x-request-id') as string;
      for (const id of [res.data.id, requestId]) {
        const g = (await (await fetch(`${h.baseURL}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
          id: string;
          request_id: string;
          status: string;
          usage: { prompt_tokens: number; completion_tokens: number; cost_cents: number };
        };
        assert.equal(g.id, res.data.id);
        assert.equal(g.request_id, requestId);
        assert.equal(g.status, 'succeeded');
        assert.equal(g.usage.completion_tokens, res.data.usage?.completion_tokens);
        assert.equal(g.usage.cost_cents, (res.data.usage as unknown as { cost_cents: number }).cost_cents);
      }
    });

    test('another account cannot read a generation', async () => {
      const res = await client.chat.completions.create({ model: 'bizora', messages });
      const other = await h.newKey((await h.newAccount()).id);
      const r = await fetch(`${h.baseURL}/generation?id=${res.id}`, { headers: { authorization: `Bearer ${other.key}` } });
      assert.equal(r.status, 404);
    });

    test('an account that cannot afford the hold gets the documented 402 and is not charged', async () => {
      const poor = await h.newAccount({ cents: 1 });
      const k = await h.newKey(poor.id);
      const c = new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 });
      await assert.rejects(c.chat.completions.create({ model: 'bizora', messages, max_tokens: 1000 }), (err) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.equal(err.status, 402);
        const e = err.error as {
          type: string;
          message: string;
          details: { balance_before_cents: number; cost_cents: number; max_affordable_tokens: number };
        };
        assert.equal(e.type, 'insufficient_balance');
        assert.equal(e.message, 'Your API balance is insufficient...');
        assert.equal(e.details.balance_before_cents, 1);
        const hold = costMicros(model.price, countPromptTokens({ messages }), 1000);
        assert.equal(e.details.cost_cents, Math.ceil(hold / 10_000));
        assert.ok(e.details.max_affordable_tokens > 0 && e.details.max_affordable_tokens < 1000);
        return true;
      });
      assert.deepEqual(await h.balanceMicros(poor.id), { balance: 10_000, held: 0 });
      // The hint is right: max_affordable_tokens is affordable.
      const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages, max_tokens: 1000 }),
      });
      const detail = ((await res.json()) as { error: { details: { max_affordable_tokens: number } } }).error.details;
      const ok = await c.chat.completions.create({ model: 'bizora', messages, max_tokens: detail.max_affordable_tokens });
      assert.equal(ok.object, 'chat.completion');
    });

    test('sk_test_ keys are answered by the simulator and never billed', async () => {
      const { key: testKey } = await h.newKey(account.id, { mode: 'test' });
      const before = await h.balanceMicros(account.id);
      const c = new OpenAI({ apiKey: testKey, baseURL: h.baseURL, maxRetries: 0 });
      const r = await c.chat.completions.create({ model: 'bizora', messages });
      assert.equal((r.usage as unknown as { cost_cents: number }).cost_cents, 0);
      assert.deepEqual(await h.balanceMicros(account.id), before);
      const broke = await h.newAccount();
      const k2 = await h.newKey(broke.id, { mode: 'test' });
      const c2 = new OpenAI({ apiKey: k2.key, baseURL: h.baseURL, maxRetries: 0 });
      assert.equal((await c2.chat.completions.create({ model: 'bizora', messages })).object, 'chat.completion');
    });

    test('magic prompts make the simulator fail the documented ways, unbilled', async () => {
      const { key: testKey } = await h.newKey(account.id, { mode: 'test' });
      const c = new OpenAI({ apiKey: testKey, baseURL: h.baseURL, maxRetries: 0 });
      const ask = (content: string) => c.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content }] });
      await assert.rejects(
        ask(`please ${MAGIC.rateLimit}`),
        (e) => e instanceof OpenAI.RateLimitError && e.headers?.get('retry-after') === '1',
      );
      await assert.rejects(ask(MAGIC.serverError), (e) => e instanceof OpenAI.InternalServerError && e.status === 502);
      await assert.rejects(ask(MAGIC.timeout), (e) => e instanceof OpenAI.InternalServerError && e.status === 504);
      await assert.rejects(
        ask(MAGIC.badRequest),
        (e) => e instanceof OpenAI.BadRequestError && (e.error as { param: string }).param === 'messages',
      );
      await assert.rejects(ask(MAGIC.unauthorized), (e) => e instanceof OpenAI.AuthenticationError && e.message === '401 Invalid API key');
      await assert.rejects(ask(MAGIC.forbidden), (e) => e instanceof OpenAI.PermissionDeniedError);
      await assert.rejects(ask(MAGIC.internalError), (e) => e instanceof OpenAI.InternalServerError && e.status === 500);
      const poor = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${testKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: MAGIC.insufficientBalance }] }),
      });
      assert.equal(poor.status, 402);
      assert.equal(
        await poor.text(),
        '{"error":{"type":"insufficient_balance","message":"Your API balance is insufficient...","details":{"balance_before_cents":50,"cost_cents":100}}}',
      );
      const stream = await c.chat.completions.create({
        model: 'bizora',
        messages: [{ role: 'user', content: MAGIC.cutoff }],
        stream: true,
      });
      await assert.rejects(async () => {
        for await (const _ of stream) {
          // read until the simulated cut
        }
      }, OpenAI.APIError);
    });

    test('a live request that the backend fails before any output is not billed', async () => {
      const before = await h.balanceMicros(account.id);
      await assert.rejects(
        client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: MAGIC.serverError }] }),
        OpenAI.InternalServerError,
      );
      assert.deepEqual(await h.balanceMicros(account.id), before);
    });
  });
}
