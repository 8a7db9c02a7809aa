// Keys an operator governs, over HTTP with the real openai SDK: requests and tokens per minute
// and requests at once (429 with Retry-After and the x-ratelimit-* headers, on a clock the test
// moves), a spend limit held like the balance (402 with limit_source, never overspent by
// requests at once), a model allowlist (403), and /v1/key showing the limits and what is left.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { MAGIC } from '../src/backends/simulator.ts';
import { grantCredit } from '../src/billing/ledger.ts';
import { costMicros } from '../src/billing/pricing.ts';
import type { KeyLimits } from '../src/keys/key-limits.ts';
import { createKey } from '../src/keys/key-store.ts';
import { countPromptTokens } from '../src/lib/tokens.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { assertBooksBalance, eventually, type Harness, startHarness, testModel } from './support/harness.ts';
import { raceForBalance } from './support/race.ts';

const model = testModel();
const other = testModel({ id: 'bizora-other' });
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello there.' }];
/** The minute the tests' clock starts in, 10 s into it. */
const START = Date.UTC(2026, 11, 3, 12, 0, 10);

describe('rate limits per key (sqlite, a clock the test moves)', () => {
  let h: Harness;
  let now = START;
  let accountId: string;
  before(async () => {
    h = await startHarness('sqlite', { models: [model, other], clock: { now: () => now } });
    accountId = (await h.newAccount({ cents: 10_000 })).id;
  });
  after(() => h.close());
  afterEach(() => assertBooksBalance(h));

  async function keyWith(limits: Partial<KeyLimits>, mode: 'live' | 'test' = 'live') {
    const k = await createKey(h.deps.db, { accountId, name: 'limited', mode, now, limits });
    return { id: k.id, key: k.key, client: new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 }) };
  }
  const chat = (client: OpenAI, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) =>
    client.chat.completions.create({ model: 'bizora', messages, max_tokens: 5, ...extra }).withResponse();

  test('--rpm 3: three requests in a minute, the fourth a 429 with Retry-After and the headers; the next minute three more', async () => {
    now = START;
    const { client, key } = await keyWith({ rpm: 3 });
    for (let i = 0; i < 3; i++) {
      const { response } = await chat(client);
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(2 - i));
      assert.equal(response.headers.get('x-ratelimit-reset-requests'), '50s');
      assert.equal(response.headers.get('x-ratelimit-limit-tokens'), null, 'no token limit, no token headers');
    }
    now += 20_000;
    const refused = await chat(client).catch((e: unknown) => e);
    assert.ok(refused instanceof OpenAI.RateLimitError);
    assert.equal(refused.headers?.get('retry-after'), '30');
    assert.equal(refused.headers?.get('x-ratelimit-remaining-requests'), '0');
    assert.equal((refused.error as { type: string }).type, 'rate_limit_error');
    assert.match(refused.message, /3 requests per minute/);
    // Every /v1 answer says where the key stands.
    const models = await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(models.headers.get('x-ratelimit-remaining-requests'), '0');
    now += 30_000;
    for (let i = 0; i < 2; i++) await chat(client);
    // A stream's head carries them too.
    const { response: streamed, data: stream } = await client.chat.completions
      .create({ model: 'bizora', messages, max_tokens: 5, stream: true })
      .withResponse();
    for await (const _ of stream);
    assert.equal(streamed.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(streamed.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    await assert.rejects(chat(client), OpenAI.RateLimitError);
  });

  test('--tpm: a request counts its prompt and output limit while it runs, then what it used; one that never fits is a 400', async () => {
    now = START + 60_000;
    const worst = countPromptTokens({ messages }) + 200;
    const tpm = 2 * worst + 10;
    const { client } = await keyWith({ tpm }, 'test');
    const first = await chat(client, { max_tokens: 200 });
    // Admitted at its worst case…
    assert.equal(first.response.headers.get('x-ratelimit-remaining-tokens'), String(tpm - worst));
    const used = first.data.usage?.total_tokens ?? 0;
    assert.ok(used < worst, 'the answer used less than its limit');
    // …and corrected to what it used when it ended: the next one sees the difference back.
    const second = await chat(client, { max_tokens: 200 });
    assert.equal(second.response.headers.get('x-ratelimit-remaining-tokens'), String(tpm - used - worst));
    const third = await chat(client, { max_tokens: 200 }).catch((e: unknown) => e);
    assert.equal(
      tpm - 2 * used >= worst,
      third instanceof Object && 'data' in third,
      'a third fits exactly when what was used leaves room',
    );
    await assert.rejects(chat(client, { max_tokens: 1000 }), { status: 400, param: 'max_tokens' });
  });

  test('--max-concurrency 1: a second request while a stream is open is a 429; once it ends, the next is served', async () => {
    now = START + 120_000;
    const { client } = await keyWith({ max_concurrency: 1 }, 'test');
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'bizora', messages: [{ role: 'user', content: `Tell me a story ${MAGIC.slow}` }], stream: true },
      { signal: controller.signal },
    );
    const refused = await chat(client).catch((e: unknown) => e);
    assert.ok(refused instanceof OpenAI.RateLimitError);
    assert.match(refused.message, /1 requests in progress at once/);
    controller.abort();
    await (async () => {
      for await (const _ of stream) break;
    })().catch(() => {});
    await eventually(
      async () =>
        await chat(client).then(
          () => true,
          () => false,
        ),
      3000,
    );
  });

  test('--models: another model is a 403 permission_error, and /v1/models lists only what the key may call', async () => {
    now = START + 180_000;
    const { client } = await keyWith({ models: ['bizora'] });
    await chat(client);
    const refused = await client.chat.completions.create({ model: 'bizora-other', messages, max_tokens: 5 }).catch((e: unknown) => e);
    assert.ok(refused instanceof OpenAI.PermissionDeniedError);
    assert.equal((refused.error as { param: string }).param, 'model');
    assert.deepEqual(
      (await client.models.list()).data.map((m) => m.id),
      ['bizora'],
    );
    await assert.rejects(client.models.retrieve('bizora-other'), OpenAI.PermissionDeniedError);
  });

  test('/v1/key shows the limits and what is left of them', async () => {
    now = START + 240_000;
    const { client, key } = await keyWith({
      rpm: 10,
      tpm: 100_000,
      max_concurrency: 4,
      spend_limit_cents: 500,
      spend_period: 'day',
      models: ['bizora'],
    });
    const { data: completion } = await chat(client);
    const info = (await (await fetch(`${h.baseURL}/key`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      limits: Record<string, unknown> & { rate_limit: Record<string, unknown> };
    };
    const cost = costMicros(model.price, completion.usage?.prompt_tokens ?? 0, completion.usage?.completion_tokens ?? 0);
    assert.deepEqual(info.limits, {
      rate_limit: {
        requests_per_minute: 10,
        tokens_per_minute: 100_000,
        max_concurrency: 4,
        remaining_requests: 9,
        remaining_tokens: 100_000 - (completion.usage?.total_tokens ?? 0),
        in_flight: 0,
        reset_seconds: 50,
      },
      spend_limit_cents: 500,
      spend_period: 'day',
      spend_remaining_cents: Math.floor((500 * 10_000 - cost) / 10_000),
      models: ['bizora'],
    });
  });
});

for (const kind of testDatabaseKinds()) {
  describe(`a key's spend limit under requests at once (${kind})`, () => {
    let h: Harness;
    // Dear enough that a request costs cents: a limit in whole cents then affords an exact number.
    const dear = testModel({
      price: { input_per_million_micros: 100_000_000, output_per_million_micros: 10_000_000_000, request_micros: 100 },
    });
    before(async () => {
      h = await startHarness(kind, { models: [dear] });
    });
    after(() => h.close());
    afterEach(() => assertBooksBalance(h));

    test('a key whose limit affords exactly 5 requests: 30 at once -> 5 succeed, 25 get 402 with limit_source key_spend_limit', async () => {
      const perRequest = costMicros(dear.price, countPromptTokens({ messages }), 5);
      const account = await h.newAccount();
      await h.deps.ledger.run((s) => grantCredit(s, { accountId: account.id, micros: 100 * perRequest, now: Date.now() }));
      // A limit in whole cents that covers 5 requests and not 6.
      const cents = Math.ceil((5 * perRequest) / 10_000);
      assert.ok(cents * 10_000 < 6 * perRequest, 'the test needs requests dearer than a cent apart');
      const k = await createKey(h.deps.db, {
        accountId: account.id,
        name: 'capped',
        mode: 'live',
        now: Date.now(),
        limits: { spend_limit_cents: cents },
      });
      const client = new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 });
      const { ok, refused, results } = await raceForBalance(client, 30, { messages, maxTokens: 5 });
      assert.equal(ok, 5);
      assert.equal(refused, 25);
      const details = results.flatMap((r) =>
        r.status === 'rejected' ? [(r.reason as InstanceType<typeof OpenAI.APIError>).error as { details: Record<string, unknown> }] : [],
      );
      assert.ok(details.every((e) => e.details.limit_source === 'key_spend_limit'));
      const spend = await h.deps.db.selectFrom('key_spend').selectAll().where('key_id', '=', k.id).executeTakeFirstOrThrow();
      assert.deepEqual([Number(spend.spent_micros), Number(spend.held_micros)], [5 * perRequest, 0]);
      // The account's own balance, when it is what runs out, says so.
      const broke = await h.newAccount();
      const poor = new OpenAI({ apiKey: (await h.newKey(broke.id)).key, baseURL: h.baseURL, maxRetries: 0 });
      const e = await poor.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }).catch((err: unknown) => err);
      assert.equal(
        ((e as InstanceType<typeof OpenAI.APIError>).error as { details: { limit_source: string } }).details.limit_source,
        'account_balance',
      );
    });
  });
}
