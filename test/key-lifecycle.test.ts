// A key's life after creation, over HTTP on a clock the test moves: it expires (401 after
// expires_at), and rotation gives it a new secret with the same id, limits and usage while the
// old secret works for the grace the caller chose (0: not at all), then gets 401.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../src/db/connection.ts';
import { KEY_CACHE_TTL_MS } from '../src/keys/key-cache.ts';
import { SQLITE_CHECK_MS } from '../src/keys/key-changes.ts';
import { createKey, revokeKey, rotateKey, updateKey } from '../src/keys/key-store.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { eventually, type Harness, startHarness, testModel } from './support/harness.ts';

const START = Date.UTC(2026, 11, 3, 12);
const HOUR = 3_600_000;

for (const kind of testDatabaseKinds())
  describe(`expiry and rotation (${kind}, a clock the test moves)`, () => {
    let h: Harness;
    let now = START;
    let accountId: string;
    before(async () => {
      h = await startHarness(kind, { models: [testModel()], clock: { now: () => now } });
      accountId = (await h.newAccount({ cents: 1_000 })).id;
    });
    after(() => h.close());

    const status = async (key: string) =>
      (
        await fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'bizora', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
        })
      ).status;

    test('a key with expires_at works until then and gets 401 after; clearing it brings the key back', async () => {
      now = START;
      const k = await createKey(h.deps.db, { accountId, name: 'expiring', mode: 'live', now, expiresAt: now + HOUR });
      assert.equal(await status(k.key), 200);
      now += HOUR;
      assert.equal(await status(k.key), 401);
      await updateKey(h.deps.db, { keyId: k.id, expiresAt: null });
      assert.equal(await status(k.key), 200);
    });

    test('rotation: the new secret works at once, the old one for its grace and then 401; the same key id, limits and usage', async () => {
      now = START + 10 * HOUR;
      const k = await createKey(h.deps.db, { accountId, name: 'rotating', mode: 'live', now, limits: { rpm: 1000 } });
      assert.equal(await status(k.key), 200);
      const r = await rotateKey(h.deps.db, { keyId: k.id, graceMs: 24 * HOUR, now });
      assert.ok(r);
      assert.equal(r.id, k.id);
      assert.notEqual(r.key, k.key);
      assert.equal(r.previous_valid_until, now + 24 * HOUR);
      assert.deepEqual([await status(r.key), await status(k.key)], [200, 200]);
      const info = (await (await fetch(`${h.baseURL}/key`, { headers: { authorization: `Bearer ${r.key}` } })).json()) as {
        id: string;
        limits: { rate_limit: { requests_per_minute: number } };
      };
      assert.deepEqual([info.id, info.limits.rate_limit.requests_per_minute], [k.id, 1000]);
      const used = await h.deps.db.selectFrom('usage_records').select('key_id').where('key_id', '=', k.id).execute();
      assert.equal(used.length, 3, 'the usage of both secrets is the one key’s');
      now += 24 * HOUR;
      assert.deepEqual([await status(r.key), await status(k.key)], [200, 401]);
    });

    test('rotating again during a grace ends the oldest secret at once; grace 0 ends the old one at once; a revoked key is not rotated', async () => {
      now = START + 100 * HOUR;
      const k = await createKey(h.deps.db, { accountId, name: 'twice', mode: 'live', now });
      const first = await rotateKey(h.deps.db, { keyId: k.id, graceMs: HOUR, now });
      const second = await rotateKey(h.deps.db, { keyId: k.id, graceMs: HOUR, now });
      assert.ok(first && second);
      assert.deepEqual([await status(k.key), await status(first.key), await status(second.key)], [401, 200, 200]);
      const third = await rotateKey(h.deps.db, { keyId: k.id, graceMs: 0, now });
      assert.ok(third);
      assert.equal(third.previous_valid_until, null);
      assert.deepEqual([await status(second.key), await status(third.key)], [401, 200]);
      await revokeKey(h.deps.db, { keyId: k.id, now });
      assert.equal(await rotateKey(h.deps.db, { keyId: k.id, graceMs: HOUR, now }), undefined);
      assert.equal(await status(third.key), 401);
    });

    if (kind === 'sqlite')
      test("SQLite caches a key: another process's revocation is seen within SQLITE_CHECK_MS (data_version), a write that went round key-store after the TTL", async () => {
        now = START + 300 * HOUR;
        const k = await createKey(h.deps.db, { accountId, name: 'cached', mode: 'live', now });
        assert.equal(await status(k.key), 200);
        // Revoked by another connection to the file, as the CLI's process would.
        const other = openDatabase(h.databaseUrl);
        await other.db.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', k.id).execute();
        await other.close();
        assert.equal(await status(k.key), 200, 'the file is not looked at again within SQLITE_CHECK_MS');
        now += SQLITE_CHECK_MS;
        assert.equal(await status(k.key), 401);

        // Revoked on the server's own connection without key-store: no other process committed.
        const k2 = await createKey(h.deps.db, { accountId, name: 'cached on', mode: 'live', now });
        assert.equal(await status(k2.key), 200);
        await h.deps.db.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', k2.id).execute();
        now += SQLITE_CHECK_MS;
        assert.equal(await status(k2.key), 200, 'answered from the cache');
        now += KEY_CACHE_TTL_MS;
        assert.equal(await status(k2.key), 401);
      });

    if (kind === 'postgres')
      test('PostgreSQL caches a key: read once, then from memory; a change nobody announced is seen after the 1 s TTL at most', async () => {
        now = START + 200 * HOUR;
        const k = await createKey(h.deps.db, { accountId, name: 'cached', mode: 'live', now });
        // The cache is used once its listening connection is up.
        await eventually(() => h.deps.keyCache?.listening === true, 3000);
        assert.equal(await status(k.key), 200);
        // Revoked behind the server's back (no NOTIFY): the cached key is still served…
        await h.deps.db.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', k.id).execute();
        assert.equal(await status(k.key), 200, 'answered from the cache');
        // …until its TTL runs out.
        now += 1001;
        assert.equal(await status(k.key), 401);
      });
  });
