// What OpenAI clients send that a gateway must pass on or answer: n > 1 (held and billed for
// every choice), the output limit in the field the upstream wants, CORS for browser clients
// (BIZORA_CORS_ORIGINS), and model ids with a slash. HTTP only: SQLite.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { costMicros } from '../src/billing/pricing.ts';
import { countPromptTokens } from '../src/lib/tokens.ts';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream, WORDS } from './support/mock-upstream.ts';

const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hello' }];

describe('n, the output limit field and model ids with a slash, behind an openai-compatible upstream', () => {
  let h: Harness;
  let mock: MockUpstream;
  const model = testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1' });
  const legacy = testModel({ id: 'legacy', backend: 'openai-compatible', max_tokens_field: 'max_tokens' });
  const slashed = testModel({ id: 'openai/gpt-4o-mini', backend: 'openai-compatible' });

  before(async () => {
    mock = await startMockUpstream();
    h = await startHarness('sqlite', { models: [model, legacy, slashed].map((m) => ({ ...m, upstream_url: mock.url })) });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });
  afterEach(() => assertBooksBalance(h));

  const clientFor = async (cents: number) => {
    const account = await h.newAccount({ cents });
    const { key } = await h.newKey(account.id);
    return { account, client: new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 }) };
  };

  test('n is passed upstream and every choice is billed; the hold covers n times the output limit', async () => {
    const { account, client } = await clientFor(100);
    const before = await h.balanceMicros(account.id);
    const r = await client.chat.completions.create({ model: 'bizora', messages, n: 3, max_tokens: 50 });
    assert.equal(mock.requests.at(-1)?.body.n, 3);
    assert.equal(r.choices.length, 3);
    assert.equal(r.usage?.completion_tokens, 3 * WORDS.length);
    const cost = costMicros(model.price, mock.promptTokens, 3 * WORDS.length);
    assert.equal(before.balance - (await h.balanceMicros(account.id)).balance, cost);

    // An account that covers one choice's worst case but not two: n = 2 is refused before the
    // upstream sees it.
    const prompt = countPromptTokens({ messages });
    const oneChoice = costMicros(model.price, prompt, model.max_output_tokens);
    const poor = await clientFor(Math.ceil((oneChoice * 1.5) / 10_000));
    const seen = mock.requests.length;
    await assert.doesNotReject(poor.client.chat.completions.create({ model: 'bizora', messages }));
    await assert.rejects(poor.client.chat.completions.create({ model: 'bizora', messages, n: 2 }), { status: 402 });
    assert.equal(mock.requests.length, seen + 1, 'the refused request never reached the upstream');
  });

  test("one output limit goes upstream, the one the hold covers, in the field the model's upstream knows", async () => {
    const { client } = await clientFor(100);
    const sent = () => [mock.requests.at(-1)?.body.max_tokens, mock.requests.at(-1)?.body.max_completion_tokens];
    await client.chat.completions.create({ model: 'bizora', messages, max_tokens: 33 });
    assert.deepEqual(sent(), [undefined, 33]);
    await client.chat.completions.create({ model: 'bizora', messages });
    assert.deepEqual(sent(), [undefined, 1000]);
    await client.chat.completions.create({ model: 'legacy', messages });
    assert.deepEqual(sent(), [1000, undefined]);
    // An upstream that knows only max_tokens gets the client's max_completion_tokens in it.
    await client.chat.completions.create({ model: 'legacy', messages, max_completion_tokens: 16 });
    assert.deepEqual(sent(), [16, undefined]);
    // Both set: the hold covers max_completion_tokens, and only that goes.
    await client.chat.completions.create({ model: 'bizora', messages, max_completion_tokens: 1, max_tokens: 900 });
    assert.deepEqual(sent(), [undefined, 1]);
  });

  test('a model id with a slash: listed, retrieved encoded or not (the SDKs encode it), and served', async () => {
    const { client, account } = await clientFor(100);
    const { key } = await h.newKey(account.id);
    assert.equal((await client.models.retrieve('openai/gpt-4o-mini')).id, 'openai/gpt-4o-mini');
    for (const path of ['openai/gpt-4o-mini', 'openai%2Fgpt-4o-mini']) {
      const res = await fetch(`${h.baseURL}/models/${path}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.status, 200, path);
      assert.equal(((await res.json()) as { id: string }).id, 'openai/gpt-4o-mini');
    }
    const missing = await fetch(`${h.baseURL}/models/openai/nope`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'model_not_found');
    const r = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages });
    assert.equal(r.model, 'openai/gpt-4o-mini');
    assert.equal(mock.requests.at(-1)?.body.model, 'openai/gpt-4o-mini');
  });
});

describe('CORS for /v1 (BIZORA_CORS_ORIGINS)', () => {
  const APP = 'https://app.example.com';
  const preflight = (h: Harness, path: string, origin: string) =>
    fetch(`${h.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os, x-stainless-retry-count',
      },
    });

  describe('with one origin allowed', () => {
    let h: Harness;
    let key: string;
    before(async () => {
      h = await startHarness('sqlite', { env: { BIZORA_CORS_ORIGINS: `${APP}, https://other.example.com` } });
      const account = await h.newAccount({ cents: 100 });
      ({ key } = await h.newKey(account.id));
    });
    after(() => h.close());

    test('a preflight from it is answered before any key is asked for, allowing the SDK’s headers', async () => {
      const res = await preflight(h, '/v1/chat/completions', APP);
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), APP);
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.match(res.headers.get('access-control-allow-headers') ?? '', /authorization.*x-stainless-os/);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, 'never with credentials');
    });

    test('its requests get their answer, errors included, with x-request-id readable; another origin gets no CORS grant', async () => {
      const ok = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { origin: APP, authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages }),
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), APP);
      assert.match(ok.headers.get('access-control-expose-headers') ?? '', /x-request-id/);
      const denied = await fetch(`${h.baseURL}/models`, { headers: { origin: APP, authorization: 'Bearer sk_live_wrong' } });
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('access-control-allow-origin'), APP, 'a browser can read the 401');
      const elsewhere = await preflight(h, '/v1/chat/completions', 'https://evil.example.com');
      assert.equal(elsewhere.headers.get('access-control-allow-origin'), null);
    });

    test('the dashboard API, which uses cookies, never answers with CORS', async () => {
      const res = await preflight(h, '/dashboard/api/session', APP);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const get = await fetch(`${h.url}/dashboard/api/me`, { headers: { origin: APP } });
      assert.equal(get.headers.get('access-control-allow-origin'), null);
    });
  });

  test('* allows any origin (API keys only); by default there is no CORS at all', async () => {
    const any = await startHarness('sqlite', { env: { BIZORA_CORS_ORIGINS: '*' } });
    const none = await startHarness('sqlite');
    try {
      const res = await preflight(any, '/v1/models', 'https://anywhere.example');
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
      const off = await preflight(none, '/v1/chat/completions', APP);
      assert.equal(off.headers.get('access-control-allow-origin'), null);
    } finally {
      await any.close();
      await none.close();
    }
  });
});
