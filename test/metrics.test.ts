// GET /metrics: off unless BIZORA_METRICS_TOKEN is set, then for that bearer token only; the
// counters and histograms move with the requests the test makes (a JSON answer, a stream, a
// refusal by the balance and one by a rate limit).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { createKey } from '../src/keys/key-store.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';

const TOKEN = 'metrics-token-0123456789';

/** The value of a sample line `name{labels} value` whose labels include all of `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('metrics', () => {
  let h: Harness;
  let off: Harness;
  before(async () => {
    [h, off] = await Promise.all([
      startHarness('sqlite', { models: [testModel()], env: { BIZORA_METRICS_TOKEN: TOKEN } }),
      startHarness('sqlite', { models: [testModel()] }),
    ]);
  });
  after(() => Promise.all([h.close(), off.close()]));

  const scrape = async (on = h, token = TOKEN) => fetch(`${on.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });

  test('off without BIZORA_METRICS_TOKEN; with it, only for that token', async () => {
    assert.equal((await scrape(off)).status, 404);
    assert.equal((await fetch(`${h.url}/metrics`)).status, 401);
    assert.equal((await scrape(h, 'not-the-token-at-all')).status, 401);
    const ok = await scrape();
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /text\/plain/);
    const text = await ok.text();
    for (const name of ['nodejs_eventloop_lag_seconds', 'bizora_open_holds', 'bizora_held_micros', 'process_resident_memory_bytes']) {
      assert.ok(text.includes(name), name);
    }
  });

  test('requests, time split into gateway and backend, first tokens, settlements and refusals are counted', async () => {
    const account = await h.newAccount({ cents: 100 });
    const client = new OpenAI({ apiKey: (await h.newKey(account.id)).key, baseURL: h.baseURL, maxRetries: 0 });
    const limited = await createKey(h.deps.db, {
      accountId: account.id,
      name: 'one a minute',
      mode: 'test',
      now: Date.now(),
      limits: { rpm: 1 },
    });
    const limitedClient = new OpenAI({ apiKey: limited.key, baseURL: h.baseURL, maxRetries: 0 });
    const poor = new OpenAI({ apiKey: (await h.newKey((await h.newAccount()).id)).key, baseURL: h.baseURL, maxRetries: 0 });
    const before = await (await scrape()).text();
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Count me.' }];

    await client.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 });
    for await (const _ of await client.chat.completions.create({ model: 'bizora', messages, max_tokens: 5, stream: true })) {
      // read to the end
    }
    await assert.rejects(poor.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }), { status: 402 });
    await limitedClient.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 });
    await assert.rejects(limitedClient.chat.completions.create({ model: 'bizora', messages, max_tokens: 5 }), { status: 429 });
    const text = await (await scrape()).text();
    const moved = (name: string, labels: Record<string, string> = {}) => sample(text, name, labels) - sample(before, name, labels);

    const route = '/v1/chat/completions';
    assert.equal(moved('bizora_model_requests_total', { route, status: '200', mode: 'live' }), 2);
    assert.equal(moved('bizora_model_requests_total', { route, status: '200', mode: 'test' }), 1);
    assert.equal(moved('bizora_gateway_overhead_seconds_count', { route }), 3);
    assert.equal(moved('bizora_backend_duration_seconds_count', { model: 'bizora', stream: 'true' }), 1);
    assert.equal(moved('bizora_time_to_first_token_seconds_count', { model: 'bizora' }), 1);
    assert.equal(moved('bizora_settlement_duration_seconds_count'), 3);
    assert.equal(moved('bizora_refused_requests_total', { limit: 'account_balance' }), 1);
    assert.equal(moved('bizora_refused_requests_total', { limit: 'requests' }), 1);
    assert.equal(moved('bizora_http_requests_total', { route, method: 'POST', status: '402' }), 1);
    assert.ok(sample(text, 'bizora_gateway_overhead_seconds_sum', { route }) > 0);
  });
});
