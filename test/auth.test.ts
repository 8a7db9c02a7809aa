import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { generateKey, hashKey } from '../src/keys/key-format.ts';
import { revokeKey } from '../src/keys/key-store.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { type Harness, startHarness } from './support/harness.ts';

const INVALID = '{"error":{"message":"Invalid API key","type":"authentication_error","code":null}}';
const chatBody = JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] });

for (const kind of testDatabaseKinds()) {
  describe(`authentication (${kind})`, () => {
    let h: Harness;
    let key: string;
    let keyId: string;
    before(async () => {
      h = await startHarness(kind);
      const acct = await h.newAccount({ cents: 1000 });
      ({ key, id: keyId } = await h.newKey(acct.id));
    });
    after(() => h.close());

    const get = (headers: Record<string, string>) => fetch(`${h.baseURL}/models`, { headers });

    test('a key in Authorization: Bearer is accepted', async () => {
      assert.equal((await get({ authorization: `Bearer ${key}` })).status, 200);
    });

    test('the Bearer scheme is case-insensitive', async () => {
      assert.equal((await get({ authorization: `bearer ${key}` })).status, 200);
      assert.equal((await get({ authorization: `BEARER ${key}` })).status, 200);
    });

    test('a key in X-Api-Key is accepted', async () => {
      assert.equal((await get({ 'x-api-key': key })).status, 200);
    });

    test('the same key in both headers is accepted', async () => {
      assert.equal((await get({ authorization: `Bearer ${key}`, 'x-api-key': key })).status, 200);
    });

    test('two different keys in the two headers get 401', async () => {
      const other = await h.newKey((await h.newAccount()).id);
      const res = await get({ authorization: `Bearer ${key}`, 'x-api-key': other.key });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'authentication_error');
    });

    test('a missing key gets 401 saying how to send one', async () => {
      const res = await get({});
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      const body = (await res.json()) as { error: { message: string; type: string; code: null } };
      assert.equal(body.error.type, 'authentication_error');
      assert.equal(body.error.code, null);
      assert.match(body.error.message, /Authorization: Bearer/);
      assert.match(body.error.message, /X-Api-Key/);
    });

    test('an unknown key gets exactly the documented 401 body and WWW-Authenticate: Bearer', async () => {
      const res = await get({ authorization: `Bearer ${generateKey('live')}` });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(await res.text(), INVALID);
    });

    test('a key that fails its checksum is refused without a database look-up', async () => {
      const typo = `${key.slice(0, 12)}${key[12] === 'a' ? 'b' : 'a'}${key.slice(13)}`;
      const before = h.queries.count;
      const res = await get({ authorization: `Bearer ${typo}` });
      assert.equal(res.status, 401);
      assert.equal(await res.text(), INVALID);
      assert.equal(h.queries.count, before);
    });

    test('a non-Bearer Authorization header gets 401', async () => {
      assert.equal((await get({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).status, 401);
    });

    test('authentication comes before the body is read: bad JSON without a key is a 401', async () => {
      const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{oops',
      });
      assert.equal(res.status, 401);
    });

    test('the SDK surfaces a 401 as AuthenticationError', async () => {
      const client = new OpenAI({ apiKey: generateKey('live'), baseURL: h.baseURL, maxRetries: 0 });
      await assert.rejects(client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }), (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError);
        assert.equal(err.status, 401);
        assert.equal(err.message, '401 Invalid API key');
        return true;
      });
    });

    test('a revoked key is refused on its very next request', async () => {
      const acct = await h.newAccount({ cents: 100 });
      const k = await h.newKey(acct.id);
      const client = new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 });
      await client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] });
      await revokeKey(h.deps.db, { keyId: k.id, now: Date.now() });
      await assert.rejects(
        client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }),
        OpenAI.AuthenticationError,
      );
      const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
        body: chatBody,
      });
      assert.equal(await res.text(), INVALID);
    });

    test('keys presented at the same moment are each judged on their own row', async () => {
      // The look-ups of one event-loop turn share one statement, on both databases (key-lookup.ts).
      const acct = await h.newAccount({ cents: 100 });
      const [live, revoked] = [await h.newKey(acct.id), await h.newKey(acct.id)];
      await revokeKey(h.deps.db, { keyId: revoked.id, now: Date.now() });
      const presented = [live.key, revoked.key, generateKey('live'), live.key, key, revoked.key];
      const statuses = await Promise.all(presented.map((k) => get({ authorization: `Bearer ${k}` }).then((r) => r.status)));
      assert.deepEqual(statuses, [200, 401, 401, 200, 200, 401]);
      const found = await Promise.all([live, revoked].map((k) => h.deps.findKey(hashKey(k.key))));
      assert.deepEqual(
        found.map((r) => [r?.id, r?.revoked_at === null]),
        [
          [live.id, true],
          [revoked.id, false],
        ],
      );
    });

    test('an expired key is refused', async () => {
      const acct = await h.newAccount();
      const k = await h.newKey(acct.id);
      await h.deps.db
        .updateTable('api_keys')
        .set({ expires_at: Date.now() - 1 })
        .where('id', '=', k.id)
        .execute();
      assert.equal((await get({ authorization: `Bearer ${k.key}` })).status, 401);
    });

    test('last_used_at is recorded for the key', async () => {
      await get({ authorization: `Bearer ${key}` });
      await h.deps.lastUsed.flush();
      const row = await h.deps.db.selectFrom('api_keys').select('last_used_at').where('id', '=', keyId).executeTakeFirstOrThrow();
      assert.ok(row.last_used_at !== null && Date.now() - row.last_used_at < 60_000);
    });
  });
}
