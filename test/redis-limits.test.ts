// Keys' rate limits shared through a real Redis (BIZORA_REDIS_URL): two servers count one key
// together (requests per minute exactly, requests at once, tokens corrected at the end), on a clock
// the test moves; and what happens when Redis does not answer, as BIZORA_LIMITS_ON_REDIS_FAILURE
// says (open: admitted unchecked; closed: 503).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { MAGIC } from '../src/backends/simulator.ts';
import type { KeyLimits } from '../src/keys/key-limits.ts';
import { createKey } from '../src/keys/key-store.ts';
import { eventually, type Harness, startHarness, testModel } from './support/harness.ts';
import { REDIS_URL, redisReachable } from './support/redis.ts';

const START = Date.UTC(2026, 11, 3, 12, 0, 5);
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello there.' }];

describe('rate limits shared through Redis by two servers on one database (a clock the test moves)', {
  skip: !(await redisReachable()) && 'Redis is not reachable',
}, () => {
  let a: Harness;
  let b: Harness;
  let now = START;
  before(async () => {
    const env = { BIZORA_REDIS_URL: REDIS_URL };
    a = await startHarness('sqlite', { models: [testModel()], env, clock: { now: () => now } });
    // The second server on the first one's database: two instances, one key.
    b = await startHarness('sqlite', { models: [testModel()], env, connectVia: () => a.databaseUrl, clock: { now: () => now } });
  });
  after(() => Promise.all([a.close(), b.close()]));

  async function sharedKey(limits: Partial<KeyLimits>) {
    const account = await a.newAccount({ cents: 1_000 });
    const k = await createKey(a.deps.db, { accountId: account.id, name: 'shared', mode: 'test', now, limits });
    return [a, b].map((h) => new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 }));
  }

  test('--rpm 4 across two servers: exactly 4 in the minute, whichever server answers; the next minute 4 more', async () => {
    now = START;
    const clients = await sharedKey({ rpm: 4 });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const client = clients[i % 2] as OpenAI;
      statuses.push(
        await client.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }).then(
          () => 200,
          (e: InstanceType<typeof OpenAI.APIError>) => e.status ?? 0,
        ),
      );
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    now += 60_000;
    const next = await (clients[1] as OpenAI).chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }).withResponse();
    assert.equal(next.response.headers.get('x-ratelimit-remaining-requests'), '3');
  });

  test('--max-concurrency 1 across two servers: a stream open on one refuses a request on the other, until it ends', async () => {
    now = START + 120_000;
    const [onA, onB] = (await sharedKey({ max_concurrency: 1 })) as [OpenAI, OpenAI];
    const controller = new AbortController();
    const stream = await onA.chat.completions.create(
      { model: 'bizora', messages: [{ role: 'user', content: `A long story ${MAGIC.slow}` }], stream: true },
      { signal: controller.signal },
    );
    await assert.rejects(onB.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }), OpenAI.RateLimitError);
    controller.abort();
    await (async () => {
      for await (const _ of stream) break;
    })().catch(() => {});
    await eventually(
      () =>
        onB.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }).then(
          () => true,
          () => false,
        ),
      3000,
    );
  });
});

describe('when Redis does not answer', () => {
  let open: Harness;
  let closed: Harness;
  // Nothing listens on port 1: every command fails at once.
  const down = 'redis://127.0.0.1:1';
  before(async () => {
    [open, closed] = await Promise.all([
      startHarness('sqlite', { models: [testModel()], env: { BIZORA_REDIS_URL: down, BIZORA_LIMITS_ON_REDIS_FAILURE: 'open' } }),
      startHarness('sqlite', { models: [testModel()], env: { BIZORA_REDIS_URL: down, BIZORA_LIMITS_ON_REDIS_FAILURE: 'closed' } }),
    ]);
  });
  after(() => Promise.all([open.close(), closed.close()]));

  const limitedClient = async (h: Harness) => {
    const account = await h.newAccount({ cents: 100 });
    const k = await createKey(h.deps.db, { accountId: account.id, name: 'limited', mode: 'test', now: Date.now(), limits: { rpm: 1 } });
    const unlimited = (await h.newKey(account.id, { mode: 'test' })).key;
    return {
      limited: new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 }),
      unlimited: new OpenAI({ apiKey: unlimited, baseURL: h.baseURL, maxRetries: 0 }),
    };
  };

  test('open (the default): requests are admitted, limits unchecked', async () => {
    const { limited } = await limitedClient(open);
    for (let i = 0; i < 3; i++) await limited.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 });
  });

  test('closed: a key with limits gets a 503 with Retry-After; a key without limits is served', async () => {
    const { limited, unlimited } = await limitedClient(closed);
    const refused = await limited.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }).catch((e: unknown) => e);
    assert.ok(refused instanceof OpenAI.APIError);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers?.get('retry-after'), '1');
    await unlimited.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 });
  });
});
