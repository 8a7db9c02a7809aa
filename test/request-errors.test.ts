import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Harness, startHarness } from './support/harness.ts';

type ErrorBody = { error: { message: string; type: string; param?: string | null; code: string | null } };

// What this file tests is the HTTP and streaming layer, not storage (the ledger's operations are
// the same code on both databases, and ledger.test.ts and concurrency.test.ts run them on both): SQLite.
for (const kind of ['sqlite'] as const) {
  describe(`bad requests get clear OpenAI-shaped errors (${kind})`, () => {
    let h: Harness;
    let key: string;
    let accountId: string;
    before(async () => {
      h = await startHarness(kind, { env: { BIZORA_BODY_LIMIT_BYTES: '4096' } });
      accountId = (await h.newAccount({ cents: 100 })).id;
      ({ key } = await h.newKey(accountId));
    });
    after(() => h.close());

    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
        body,
      });

    async function expectError(res: Response, status: number, type: string, param?: string | null): Promise<ErrorBody> {
      assert.equal(res.status, status);
      assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
      const text = await res.text();
      assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+/, 'no stack trace');
      const body = JSON.parse(text) as ErrorBody;
      assert.equal(body.error.type, type);
      assert.ok(body.error.message.length > 0);
      if (param !== undefined) assert.equal(body.error.param, param);
      return body;
    }

    // After every test: the bad requests moved no money.
    afterEach(async () => assert.deepEqual(await h.balanceMicros(accountId), { balance: 1_000_000, held: 0 }));
    test('malformed JSON is a 400 invalid_request_error', async () => {
      await expectError(await post('{"model": "bizora", '), 400, 'invalid_request_error', null);
    });

    test('an empty body is a 400', async () => {
      await expectError(await post(''), 400, 'invalid_request_error');
    });

    test('a wrong field type is a 400 naming the field in param', async () => {
      const base = { model: 'bizora', messages: [{ role: 'user', content: 'hi' }] };
      await expectError(await post(JSON.stringify({ ...base, max_tokens: 'ten' })), 400, 'invalid_request_error', 'max_tokens');
      await expectError(await post(JSON.stringify({ ...base, temperature: 'hot' })), 400, 'invalid_request_error', 'temperature');
      await expectError(await post(JSON.stringify({ ...base, stream: 'yes' })), 400, 'invalid_request_error', 'stream');
      await expectError(
        await post(JSON.stringify({ model: 'bizora', messages: [{ content: 'hi' }] })),
        400,
        'invalid_request_error',
        'messages[0].role',
      );
      await expectError(await post(JSON.stringify({ model: 'bizora', messages: [] })), 400, 'invalid_request_error', 'messages');
      await expectError(await post(JSON.stringify({ ...base, n: 129 })), 400, 'invalid_request_error', 'n');
    });

    test('a missing required field is a 400 that names it', async () => {
      const body = await expectError(
        await post(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })),
        400,
        'invalid_request_error',
        'model',
      );
      assert.match(body.error.message, /model/);
    });

    test('a body over the configured limit is a 413', async () => {
      const big = JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] });
      await expectError(await post(big), 413, 'invalid_request_error');
    });

    test('a body that is not JSON is refused with a clear error', async () => {
      const res = await post('model=bizora', { 'content-type': 'text/plain' });
      assert.equal(res.status, 415);
      assert.equal(((await res.json()) as ErrorBody).error.type, 'invalid_request_error');
    });

    test('an unknown route is a 404 not_found_error, with or without a key', async () => {
      await expectError(await fetch(`${h.baseURL}/nothing-here`, { headers: { authorization: `Bearer ${key}` } }), 404, 'not_found_error');
      await expectError(await fetch(`${h.url}/elsewhere`), 404, 'not_found_error');
    });

    test('a wrong method on a known route is a 405 that says which methods it answers', async () => {
      const res = await fetch(`${h.baseURL}/chat/completions`, { headers: { authorization: `Bearer ${key}` } });
      const body = await expectError(res, 405, 'invalid_request_error');
      assert.equal(res.headers.get('allow'), 'POST');
      assert.equal(body.error.code, 'method_not_allowed');
    });

    test('a NUL byte in a generation id is a 400, not a database error', async () => {
      const res = await fetch(`${h.baseURL}/generation?id=%00`, { headers: { authorization: `Bearer ${key}` } });
      await expectError(res, 400, 'invalid_request_error');
    });

    test('a body nested 1,000 levels deep is a 400 that says so', async () => {
      const deep = `${'['.repeat(1000)}${']'.repeat(1000)}`;
      const body = await expectError(
        await post(`{"model":"bizora","messages":[{"role":"user","content":${deep}}]}`),
        400,
        'invalid_request_error',
        null,
      );
      assert.equal(body.error.code, 'json_too_deep');
    });

    test('every response carries a distinct x-request-id', async () => {
      const ids = new Set<string>();
      for (const res of [
        await fetch(`${h.url}/healthz`),
        await fetch(`${h.baseURL}/models`),
        await fetch(`${h.baseURL}/models`, { headers: { 'x-api-key': key } }),
      ]) {
        const id = res.headers.get('x-request-id');
        assert.match(id ?? '', /^req_[0-9A-Za-z]{24}$/);
        ids.add(id as string);
      }
      assert.equal(ids.size, 3);
    });
  });
}
