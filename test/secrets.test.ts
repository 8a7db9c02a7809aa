import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { generateKey } from '../src/keys/key-format.ts';
import { revokeKey } from '../src/keys/key-store.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream } from './support/mock-upstream.ts';

const UPSTREAM_SECRET = 'upstream-secret-0123456789';

describe('secrets never reach a log line or a response after creation', () => {
  let h: Harness;
  let mock: MockUpstream;
  let log = '';
  before(async () => {
    mock = await startMockUpstream();
    const logStream = new PassThrough();
    logStream.on('data', (d: Buffer) => {
      log += d.toString('utf8');
    });
    h = await startHarness('sqlite', {
      env: { BIZORA_LOG_LEVEL: 'trace' },
      logStream,
      models: [testModel({ backend: 'openai-compatible', upstream_url: mock.url, upstream_api_key: UPSTREAM_SECRET })],
    });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });

  test('requests that succeed, fail and are refused leave no key, hash or upstream secret in the logs', async () => {
    const account = await h.newAccount({ cents: 1000 });
    const live = await h.newKey(account.id);
    const test = await h.newKey(account.id, { mode: 'test' });
    const made = generateKey('live');
    const client = new OpenAI({ apiKey: live.key, baseURL: h.baseURL, maxRetries: 0 });
    await client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] });
    const s = await client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _ of s) {
      // drain
    }
    await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'mock:error:500' }] }));
    await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'mock:error:401' }] }));
    await fetch(`${h.baseURL}/models`, { headers: { 'x-api-key': test.key } });
    await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${made}` } });
    await fetch(`${h.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${live.key}`, 'content-type': 'application/json' },
      body: '{bad',
    });
    const keyInfo = await (await fetch(`${h.baseURL}/key`, { headers: { authorization: `Bearer ${live.key}` } })).text();
    await revokeKey(h.deps.db, { keyId: live.id, now: Date.now() });
    await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${live.key}` } });

    assert.ok(log.length > 0, 'logs were captured');
    const hashes = await h.deps.db.selectFrom('api_keys').select('hash').execute();
    for (const secret of [live.key, test.key, made, UPSTREAM_SECRET, ...hashes.map((r) => r.hash)]) {
      assert.equal(log.includes(secret), false, `log contains ${secret.slice(0, 12)}…`);
      assert.equal(keyInfo.includes(secret), false);
    }
    assert.equal(log.includes(live.key.slice(8, -6)), false, 'not even the random part of a key');
  });
});
