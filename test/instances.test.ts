// Two server processes, as operators run them behind a load balancer: `bizora serve` twice on one
// PostgreSQL database and one Redis. A key with rpm 10 gets exactly 10 successes across both in a
// minute; a revoked key is refused by both within a second; a balance is never overspent across
// both; and the books balance after it all.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAccount } from '../src/accounts/account-store.ts';
import { grantCredit, verifyLedger } from '../src/billing/ledger.ts';
import { createLedgerExecutor } from '../src/billing/ledger-executor.ts';
import { costMicros } from '../src/billing/pricing.ts';
import { loadConfig } from '../src/config.ts';
import { type Database, openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { createKey, revokeKey } from '../src/keys/key-store.ts';
import { countPromptTokens } from '../src/lib/tokens.ts';
import { createTestDatabase, type TestDatabase, testDatabaseKinds } from './support/databases.ts';
import { REDIS_URL, redisReachable } from './support/redis.ts';
import { type Served, serve } from './support/served.ts';

const postgres = testDatabaseKinds().includes('postgres');
const redis = await redisReachable();
const messages = [{ role: 'user', content: 'Hello from two instances.' }];
const MAX_TOKENS = 5;

describe('two server processes on one PostgreSQL and one Redis', { skip: !(postgres && redis) && 'needs PostgreSQL and Redis' }, () => {
  let tdb: TestDatabase;
  let database: Database;
  let servers: Served[] = [];
  before(async () => {
    tdb = await createTestDatabase('postgres');
    database = openDatabase(tdb.url);
    await migrateToLatest(database.db);
    const env = { ...process.env, BIZORA_DATABASE_URL: tdb.url, BIZORA_REDIS_URL: REDIS_URL, BIZORA_LOG_LEVEL: 'warn' };
    servers = await Promise.all([serve(env), serve(env)]);
  });
  after(async () => {
    for (const s of servers) s.process.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.exited));
    await database.close();
    await tdb.drop();
  });

  const chat = async (server: Served, key: string) =>
    (
      await fetch(`${server.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages, max_tokens: MAX_TOKENS }),
      })
    ).status;

  async function account(micros: number) {
    const a = await createAccount(database.db, { email: `${Math.random().toString(36).slice(2)}@example.com`, now: Date.now() });
    if (micros > 0) await createLedgerExecutor(database).run((s) => grantCredit(s, { accountId: a.id, micros, now: Date.now() }));
    return a;
  }

  test('--rpm 10: 30 requests at once, half on each server: exactly 10 succeed', async () => {
    // The 30 land in one minute: not in a minute's last seconds (a rare wait of at most 4 s).
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 56_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
    const a = await account(0);
    const k = await createKey(database.db, { accountId: a.id, name: 'ten a minute', mode: 'test', now: Date.now(), limits: { rpm: 10 } });
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => chat(servers[i % 2] as Served, k.key).then((s) => ({ s, i: i % 2 }))),
    );
    const ok = statuses.filter((x) => x.s === 200);
    console.log(`# rpm 10 across two instances: ${ok.filter((x) => x.i === 0).length} + ${ok.filter((x) => x.i === 1).length} successes`);
    assert.equal(ok.length, 10);
    assert.equal(statuses.filter((x) => x.s === 429).length, 20);
  });

  test('a revoked key is refused by both servers within a second', async () => {
    const a = await account(10_000_000);
    const k = await createKey(database.db, { accountId: a.id, name: 'to revoke', mode: 'live', now: Date.now() });
    assert.deepEqual(await Promise.all(servers.map((s) => chat(s, k.key))), [200, 200]);
    const revokedAt = performance.now();
    await revokeKey(database.db, { keyId: k.id, now: Date.now() });
    const refusedAfter = await Promise.all(
      servers.map(async (s) => {
        for (;;) {
          if ((await chat(s, k.key)) === 401) return performance.now() - revokedAt;
          if (performance.now() - revokedAt > 5000) return Number.POSITIVE_INFINITY;
        }
      }),
    );
    console.log(`# a revoked key refused after ${refusedAfter.map((ms) => `${ms.toFixed(1)} ms`).join(' and ')}`);
    for (const ms of refusedAfter) assert.ok(ms < 1000, `refused after ${ms} ms`);
  });

  test('a balance for exactly 6 requests: 30 at once across both servers -> 6 succeed, 24 get 402, the books balance', async () => {
    const { models } = loadConfig({});
    const price = (models[0] as (typeof models)[0]).price;
    const perRequest = costMicros(price, countPromptTokens({ messages }), MAX_TOKENS);
    const a = await account(6 * perRequest);
    const k = await createKey(database.db, { accountId: a.id, name: 'race', mode: 'live', now: Date.now() });
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(servers[i % 2] as Served, k.key)));
    assert.equal(statuses.filter((s) => s === 200).length, 6);
    assert.equal(statuses.filter((s) => s === 402).length, 24);
    const row = await database.db
      .selectFrom('accounts')
      .select(['balance_micros', 'held_micros'])
      .where('id', '=', a.id)
      .executeTakeFirstOrThrow();
    assert.deepEqual([Number(row.balance_micros), Number(row.held_micros)], [0, 0]);
    assert.deepEqual((await verifyLedger(database.db)).problems, []);
  });
});
