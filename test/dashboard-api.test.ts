import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { DashboardClient } from './support/dashboard-client.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { assertBooksBalance, type Harness, startHarness } from './support/harness.ts';

for (const kind of testDatabaseKinds()) {
  describe(`dashboard API (${kind})`, () => {
    let h: Harness;
    // Alice signs up first on a fresh database, so she is its administrator; every test may use her.
    let alice: DashboardClient;
    let aliceAccount: { role: string; balance_cents: number };
    // The server's clock runs with real time, moved ahead by `skipped` when a test needs it.
    let skipped = 0;
    before(async () => {
      h = await startHarness(kind, { env: { BIZORA_SIGNUP_CREDIT_CENTS: '500' }, clock: { now: () => Date.now() + skipped } });
      alice = new DashboardClient(h.url);
      aliceAccount = await alice.signUp('alice@example.com');
    });
    after(() => h.close());

    // After every test: the books balance and no hold is left open.
    afterEach(() => assertBooksBalance(h));

    test('the first user to sign up is the administrator and starts with the sign-up credit', async () => {
      assert.equal(aliceAccount.role, 'admin');
      assert.equal(aliceAccount.balance_cents, 500);
      const bob = new DashboardClient(h.url);
      assert.equal((await bob.signUp('bob@example.com')).role, 'member');
    });

    test('the session cookie is httpOnly and SameSite', async () => {
      const c = new DashboardClient(h.url);
      await c.start();
      const r = await c.call('POST', '/signup', { email: 'cookie@example.com', password: 'long enough pw' });
      const cookie = r.headers.getSetCookie().find((s) => s.startsWith('bizora_session='));
      assert.ok(cookie);
      assert.match(cookie, /HttpOnly/i);
      assert.match(cookie, /SameSite=Lax/i);
      assert.doesNotMatch(JSON.stringify(r.body), /password|hash/i);
    });

    test('state-changing requests without the CSRF token are refused', async () => {
      const r = await alice.call('POST', '/keys', { name: 'no csrf' }, { csrf: false });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'csrf_invalid');
      const fresh = new DashboardClient(h.url);
      const s = await fresh.call('POST', '/signin', { email: 'alice@example.com', password: 'correct horse battery' });
      assert.equal(s.status, 403);
    });

    test('a wrong password gets a generic message, the same as an unknown email', async () => {
      const c = new DashboardClient(h.url);
      await c.start();
      const wrong = await c.call('POST', '/signin', { email: 'alice@example.com', password: 'nope nope nope' });
      const unknown = await c.call('POST', '/signin', { email: 'nobody@example.com', password: 'nope nope nope' });
      assert.equal(wrong.status, 401);
      assert.deepEqual(wrong.body, unknown.body);
      assert.equal(wrong.body.error.message, 'The email or password is incorrect.');
    });

    test('ten wrong passwords from one address are refused for a while, then allowed again', async () => {
      const c = new DashboardClient(h.url);
      await c.start();
      const victim = new DashboardClient(h.url);
      await victim.signUp('victim@example.com', 'the right password');
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) {
        // X-Forwarded-For from a client is ignored without BIZORA_TRUST_PROXY: all of these are
        // one address, whatever they claim.
        const r = await c.call(
          'POST',
          '/signin',
          { email: 'victim@example.com', password: `guess-${i}-xxxx` },
          { headers: { 'x-forwarded-for': `10.0.0.${i}` } },
        );
        statuses.push(r.status);
        if (r.status === 429) assert.ok(Number(r.headers.get('retry-after')) > 0);
      }
      assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
      const refused = await c.call('POST', '/signin', { email: 'victim@example.com', password: 'the right password' });
      assert.equal(refused.status, 429, 'this address stays locked out of this account');
      skipped += 15 * 60 * 1000;
      const later = await c.call('POST', '/signin', { email: 'victim@example.com', password: 'the right password' });
      assert.equal(later.status, 200);
    });

    test('an API key is not accepted by the dashboard API, and a session cookie is not accepted by /v1', async () => {
      const me = await alice.call('GET', '/me');
      const { key } = await h.newKey(me.body.account.id);
      const r = await fetch(`${h.url}/dashboard/api/keys`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'not_signed_in');
      const v1 = await fetch(`${h.baseURL}/models`, { headers: { cookie: alice.cookieHeader() } });
      assert.equal(v1.status, 401);
    });

    test('keys: create shows the full key once, the list never does, revoke works on the next API call', async () => {
      const created = await alice.call('POST', '/keys', { name: '  ci  ' });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, 'ci');
      assert.match(created.body.key, /^sk_live_/);
      const chat = () =>
        fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${created.body.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }),
        });
      assert.equal((await chat()).status, 200);
      const list = await alice.call('GET', '/keys');
      assert.ok(!JSON.stringify(list.body).includes(created.body.key));
      const row = list.body.data.find((k: { id: string }) => k.id === created.body.id);
      assert.equal(row.status, 'active');
      assert.ok(row.last_used_at !== null);
      const revoked = await alice.call('POST', `/keys/${created.body.id}/revoke`);
      assert.equal(revoked.body.status, 'revoked');
      assert.equal((await chat()).status, 401);
      const after = await alice.call('GET', '/keys');
      assert.equal(after.body.data.find((k: { id: string }) => k.id === created.body.id).status, 'revoked');
    });

    test('keys: limits at creation and later, rotation with a grace, and the notices (expiring, rotating, unused)', async () => {
      const created = await alice.call('POST', '/keys', {
        name: 'limited',
        rpm: 5,
        spend_limit_cents: 100,
        spend_period: 'day',
        expires_at: Date.now() + 86_400_000,
      });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.limits, {
        rpm: 5,
        tpm: null,
        max_concurrency: null,
        spend_limit_cents: 100,
        spend_period: 'day',
        models: null,
      });
      assert.deepEqual(created.body.notices, ['expiring']);
      const changed = await alice.call('PATCH', `/keys/${created.body.id}`, { rpm: null, models: ['bizora'], expires_at: null });
      assert.deepEqual(
        [changed.body.limits.rpm, changed.body.limits.models, changed.body.expires_at, changed.body.notices],
        [null, ['bizora'], null, []],
      );
      assert.equal((await alice.call('PATCH', `/keys/${created.body.id}`, { tpm: -1 })).status, 400);
      const rotated = await alice.call('POST', `/keys/${created.body.id}/rotate`, { grace_seconds: 600 });
      assert.equal(rotated.status, 200);
      assert.notEqual(rotated.body.key, created.body.key);
      assert.deepEqual([rotated.body.id, rotated.body.notices], [created.body.id, ['rotating']]);
      for (const secret of [created.body.key, rotated.body.key]) {
        const res = await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${secret}` } });
        assert.equal(res.status, 200);
      }
      // A key nobody has used for 30 days stands out.
      const old = await alice.call('POST', '/keys', { name: 'forgotten' });
      await h.deps.db
        .updateTable('api_keys')
        .set({ created_at: Date.now() - 31 * 86_400_000 })
        .where('id', '=', old.body.id)
        .execute();
      const listed = (await alice.call('GET', '/keys')).body.data as Array<{ id: string; notices: string[] }>;
      assert.deepEqual(listed.find((k) => k.id === old.body.id)?.notices, ['unused']);
      const mallory = new DashboardClient(h.url);
      await mallory.signUp(`mallory-rotate-${Date.now()}@example.com`);
      assert.equal((await mallory.call('POST', `/keys/${created.body.id}/rotate`, {})).status, 404);
      assert.equal((await mallory.call('PATCH', `/keys/${created.body.id}`, { rpm: 1 })).status, 404);
    });

    test('a key needs a descriptive name', async () => {
      const r = await alice.call('POST', '/keys', { name: '   ' });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.param, 'name');
    });

    test("an account can never see or revoke another account's keys", async () => {
      const mallory = new DashboardClient(h.url);
      await mallory.signUp('mallory@example.com');
      assert.equal((await alice.call('POST', '/keys', { name: 'alice only' })).status, 201);
      const aliceKeys = (await alice.call('GET', '/keys')).body.data as Array<{ id: string }>;
      assert.ok(aliceKeys.length > 0);
      assert.deepEqual((await mallory.call('GET', '/keys')).body.data, []);
      const r = await mallory.call('POST', `/keys/${aliceKeys[0]?.id}/revoke`);
      assert.equal(r.status, 404);
    });

    test('billing shows the balance and a paginated ledger; admins grant credit, members cannot', async () => {
      const bob = new DashboardClient(h.url);
      const bobAccount = await bob.signUp('bob2@example.com');
      for (let i = 0; i < 3; i++) {
        const g = await alice.call('POST', '/admin/grants', { account: 'bob2@example.com', cents: 100 + i, reason: `grant ${i}` });
        assert.equal(g.status, 201);
      }
      const forbidden = await bob.call('POST', '/admin/grants', { account: bobAccount.id, cents: 1000 });
      assert.equal(forbidden.status, 403);
      const page1 = await bob.call('GET', '/billing?limit=2');
      assert.equal(page1.body.account.balance_cents, 500 + 303);
      assert.deepEqual(
        page1.body.entries.map((e: { reason: string }) => e.reason),
        ['grant 2', 'grant 1'],
      );
      const page2 = await bob.call('GET', `/billing?limit=2&before=${page1.body.next_before}`);
      assert.deepEqual(
        page2.body.entries.map((e: { reason: string }) => e.reason),
        ['grant 0', 'Sign-up credit'],
      );
      assert.equal(page2.body.next_before, null);
      const accounts = await alice.call('GET', '/admin/accounts');
      assert.ok(accounts.body.data.some((a: { email: string }) => a.email === 'bob2@example.com'));
      assert.equal((await bob.call('GET', '/admin/accounts')).status, 403);
    });

    test('usage shows requests, tokens and cost per day, filterable, and each request record', async () => {
      const c = new DashboardClient(h.url);
      const account = await c.signUp('usage@example.com');
      const k1 = await c.call('POST', '/keys', { name: 'one' });
      const k2 = await c.call('POST', '/keys', { name: 'two' });
      const chat = (key: string) =>
        fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'count me' }] }),
        });
      await chat(k1.body.key);
      await chat(k1.body.key);
      const third = await chat(k2.body.key);
      const requestId = third.headers.get('x-request-id');
      const all = await c.call('GET', '/usage?days=7');
      assert.equal(all.body.daily.length, 7);
      const today = all.body.daily.at(-1);
      assert.equal(today.requests, 3);
      assert.ok(today.completion_tokens > 0 && today.cost_cents > 0);
      const one = await c.call('GET', `/usage?days=7&key_id=${k1.body.id}`);
      assert.equal(one.body.daily.at(-1).requests, 2);
      assert.equal(one.body.recent.length, 2);
      assert.equal(all.body.recent[0].request_id, requestId);
      const g = await c.call('GET', `/generations/${requestId}`);
      assert.equal(g.body.request_id, requestId);
      assert.equal(g.body.status, 'succeeded');
      assert.equal((await alice.call('GET', `/generations/${requestId}`)).status, 404);
      assert.ok(account.id);
    });

    test('signing out ends the session', async () => {
      const c = new DashboardClient(h.url);
      await c.signUp('leaving@example.com');
      assert.equal((await c.call('GET', '/me')).status, 200);
      const cookie = c.cookieHeader();
      await c.call('POST', '/signout');
      const r = await fetch(`${h.url}/dashboard/api/me`, { headers: { cookie } });
      assert.equal(r.status, 401);
    });
  });
}
