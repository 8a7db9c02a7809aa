// The management API (/v1/admin/) over plain HTTP, as the operator's own programs call it:
// management keys only (and never on the model routes), accounts, keys with limits, rotation
// and revocation, credit grants that an Idempotency-Key makes happen once, usage per day.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAdminKey } from '../src/management/admin-keys.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { assertBooksBalance, type Harness, startHarness } from './support/harness.ts';

for (const kind of testDatabaseKinds())
  describe(`the management API (${kind})`, () => {
    let h: Harness;
    let admin: string;
    before(async () => {
      h = await startHarness(kind);
      admin = (await createAdminKey(h.deps.db, { name: 'billing system', now: Date.now() })).key;
    });
    after(() => h.close());

    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, key = admin) => {
      const res = await fetch(`${h.baseURL}/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      // biome-ignore lint/suspicious/noExplicitAny: the tests read many answer shapes
      return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
    };
    const chat = async (key: string) =>
      (
        await fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'bizora', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
        })
      ).status;

    test('only management keys: none, a model key or a revoked one is a 401; a management key is no model key', async () => {
      const acct = await h.newAccount({ cents: 10 });
      const { key: modelKey } = await h.newKey(acct.id);
      for (const k of ['', modelKey, 'sk_admin_notarealkeyatall']) {
        const r = await call('GET', '/accounts', undefined, {}, k);
        assert.deepEqual([r.status, r.body.error.type, r.body.error.code], [401, 'authentication_error', 'invalid_admin_key']);
      }
      const onModels = await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${admin}` } });
      assert.equal(onModels.status, 401);
    });

    test('accounts: create, get with balance, list in pages', async () => {
      const created = await call('POST', '/accounts', { email: `Ops-${kind}@Example.com`, name: 'Ops' });
      assert.equal(created.status, 201);
      assert.deepEqual([created.body.email, created.body.balance_cents], [`ops-${kind}@example.com`, 0]);
      assert.equal((await call('POST', '/accounts', { email: `ops-${kind}@example.com` })).status, 409);
      const got = await call('GET', `/accounts/${created.body.id}`);
      assert.deepEqual([got.status, got.body.id], [200, created.body.id]);
      assert.equal((await call('GET', '/accounts/acct_nobody')).status, 404);
      const ids: string[] = [];
      let after: string | null = null;
      do {
        const page = await call('GET', `/accounts?limit=2${after ? `&after=${after}` : ''}`);
        ids.push(...page.body.data.map((a: { id: string }) => a.id));
        after = page.body.next_after;
      } while (after);
      assert.ok(ids.includes(created.body.id));
      assert.equal(new Set(ids).size, ids.length, 'no account twice across pages');
    });

    test('credit grants need an Idempotency-Key, and the same key grants once, even sent five times at once', async () => {
      const acct = (await call('POST', '/accounts', { email: `credit-${kind}@example.com` })).body;
      const missing = await call('POST', `/accounts/${acct.id}/credits`, { cents: 100 });
      assert.deepEqual([missing.status, missing.body.error.code], [400, 'idempotency_key_required']);
      const grant = () => call('POST', `/accounts/${acct.id}/credits`, { cents: 100, reason: 'top-up' }, { 'idempotency-key': 'order-42' });
      const all = await Promise.all(Array.from({ length: 5 }, grant));
      assert.ok(all.every((r) => r.status === 201 && r.body.balance_cents === 100));
      assert.equal(all.filter((r) => !r.body.replayed).length, 1);
      const again = await grant();
      assert.deepEqual([again.body.replayed, again.headers.get('idempotent-replayed')], [true, 'true']);
      assert.equal((await call('GET', `/accounts/${acct.id}`)).body.balance_cents, 100);
      const reused = await call('POST', `/accounts/${acct.id}/credits`, { cents: 999 }, { 'idempotency-key': 'order-42' });
      assert.equal(reused.status, 409);
      await assertBooksBalance(h);
    });

    test('keys: created with limits (the secret once), listed, changed, rotated with a grace, revoked; each applied at once', async () => {
      const acct = (await call('POST', '/accounts', { email: `keys-${kind}@example.com` })).body;
      await call('POST', `/accounts/${acct.id}/credits`, { cents: 500 }, { 'idempotency-key': `keys-${kind}` });
      const created = await call('POST', `/accounts/${acct.id}/keys`, { name: 'worker', rpm: 1, models: ['bizora'] });
      assert.equal(created.status, 201);
      assert.match(created.body.key, /^sk_live_/);
      assert.deepEqual(created.body.limits, {
        rpm: 1,
        tpm: null,
        max_concurrency: null,
        spend_limit_cents: null,
        spend_period: null,
        models: ['bizora'],
      });
      assert.deepEqual([await chat(created.body.key), await chat(created.body.key)], [200, 429]);
      const listed = await call('GET', `/accounts/${acct.id}/keys`);
      assert.deepEqual(
        listed.body.data.map((k: { id: string }) => k.id),
        [created.body.id],
      );
      assert.ok(!JSON.stringify(listed.body).includes(created.body.key), 'the secret is shown once');
      const changed = await call('PATCH', `/keys/${created.body.id}`, { rpm: null, spend_limit_cents: 300, spend_period: 'month' });
      assert.deepEqual(
        [changed.body.limits.rpm, changed.body.limits.spend_limit_cents, changed.body.limits.spend_period],
        [null, 300, 'month'],
      );
      assert.equal(await chat(created.body.key), 200);
      const bad = await call('PATCH', `/keys/${created.body.id}`, { rpm: 0 });
      assert.equal(bad.status, 400);
      const rotated = await call('POST', `/keys/${created.body.id}/rotate`, { grace_seconds: 3600 });
      assert.equal(rotated.status, 200);
      assert.equal(rotated.body.id, created.body.id);
      assert.deepEqual([await chat(rotated.body.key), await chat(created.body.key)], [200, 200]);
      assert.equal((await call('GET', `/keys/${created.body.id}`)).body.previous_valid_until, rotated.body.previous_valid_until);
      const revoked = await call('POST', `/keys/${created.body.id}/revoke`);
      assert.equal(revoked.body.status, 'revoked');
      assert.deepEqual([await chat(rotated.body.key), await chat(created.body.key)], [401, 401]);
      assert.equal((await call('GET', '/keys/key_nothere')).status, 404);
      await assertBooksBalance(h);
    });

    test('usage per day, account, key and model adds up to what the ledger charged', async () => {
      const acct = (await call('POST', '/accounts', { email: `usage-${kind}@example.com` })).body;
      await call('POST', `/accounts/${acct.id}/credits`, { cents: 500 }, { 'idempotency-key': `usage-${kind}` });
      const k = (await call('POST', `/accounts/${acct.id}/keys`, { name: 'usage' })).body;
      for (let i = 0; i < 3; i++) assert.equal(await chat(k.key), 200);
      const usage = await call('GET', `/usage?account_id=${acct.id}`);
      assert.equal(usage.status, 200);
      assert.equal(usage.body.data.length, 1);
      const row = usage.body.data[0];
      assert.deepEqual([row.day, row.key_id, row.model, row.requests], [new Date().toISOString().slice(0, 10), k.id, 'bizora', 3]);
      const balance = (await call('GET', `/accounts/${acct.id}`)).body;
      assert.ok(
        Math.abs(500 - row.cost_cents - balance.balance_cents) < 1,
        `${row.cost_cents} spent of 500, ${balance.balance_cents} left`,
      );
      assert.equal((await call('GET', '/usage?from=10&to=5')).status, 400);
    });
  });

describe('the management API in the OpenAPI document', () => {
  test('its routes are documented, under a management-key scheme', async () => {
    const h = await startHarness('sqlite');
    try {
      const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, { security?: unknown }>>;
      };
      for (const path of [
        '/v1/admin/accounts',
        '/v1/admin/accounts/{id}/keys',
        '/v1/admin/keys/{id}/rotate',
        '/v1/admin/accounts/{id}/credits',
        '/v1/admin/usage',
      ]) {
        assert.ok(doc.paths[path], path);
      }
      assert.deepEqual(doc.paths['/v1/admin/usage']?.get?.security, [{ adminKey: [] }]);
    } finally {
      await h.close();
    }
  });
});
