import assert from 'node:assert/strict';
// Starts the real server (buildApp over real deps and a fresh database) on a free loopback port.
// Tests talk to it over HTTP; helpers create accounts, credit and keys the way the CLI does.
import type { FastifyInstance } from 'fastify';
import { createAccount } from '../../src/accounts/account-store.ts';
import { buildApp } from '../../src/app.ts';
import { grantCredit, verifyLedger } from '../../src/billing/ledger.ts';
import { centsToMicros } from '../../src/billing/pricing.ts';
import { type Config, loadConfig, type ModelConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { createKey } from '../../src/keys/key-store.ts';
import type { Clock } from '../../src/lib/clock.ts';
import { createTestDatabase, type DatabaseKind } from './databases.ts';

export type Harness = {
  kind: DatabaseKind;
  url: string;
  /** `<url>/v1`, what an SDK's baseURL is set to. */
  baseURL: string;
  databaseUrl: string;
  deps: Deps;
  app: FastifyInstance;
  queries: { count: number };
  newAccount(opts?: { cents?: number; email?: string }): Promise<{ id: string; email: string }>;
  grant(accountId: string, cents: number): Promise<void>;
  newKey(accountId: string, opts?: { name?: string; mode?: 'live' | 'test' }): Promise<{ id: string; key: string }>;
  balanceMicros(accountId: string): Promise<{ balance: number; held: number }>;
  verify(): ReturnType<typeof verifyLedger>;
  close(): Promise<void>;
};

export type HarnessOptions = {
  env?: Record<string, string>;
  models?: ModelConfig[];
  clock?: Clock;
  logStream?: NodeJS.WritableStream;
  /** The URL the server connects to, given the test database's (a test's proxy in between). */
  connectVia?: (databaseUrl: string) => string;
};

export async function startHarness(kind: DatabaseKind, opts: HarnessOptions = {}): Promise<Harness> {
  const database = await createTestDatabase(kind);
  // Load shedding is off unless a test turns it on (health.test.ts): on a loaded test machine the
  // event loop of a test process lags whatever the server does, and the suite's shared worker
  // processes hold more heap than a server would.
  const base = loadConfig({
    BIZORA_DATABASE_URL: database.url,
    BIZORA_LOG_LEVEL: 'silent',
    BIZORA_PORT: '0',
    BIZORA_MAX_EVENT_LOOP_DELAY_MS: '0',
    BIZORA_MAX_HEAP_USED_MB: '0',
    ...opts.env,
  });
  const config: Config = opts.models ? Object.freeze({ ...base, models: opts.models }) : base;
  const queries = { count: 0 };
  const connectTo = opts.connectVia ? opts.connectVia(database.url) : database.url;
  const db = openDatabase(connectTo, { onQuery: () => queries.count++, timeoutMs: config.dbTimeoutMs });
  const deps = await createDeps(config, { database: db, ...(opts.clock ? { clock: opts.clock } : {}) });
  // Key look-ups on SQLite bypass Kysely (prepared statement): count them too.
  const findKey = deps.findKey;
  deps.findKey = (hash) => {
    queries.count++;
    return findKey(hash);
  };
  const app = await buildApp(deps, opts.logStream ? { logStream: opts.logStream } : {});
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  let emails = 0;

  const h: Harness = {
    kind,
    url,
    baseURL: `${url}/v1`,
    databaseUrl: database.url,
    deps,
    app,
    queries,
    async newAccount(o = {}) {
      const a = await createAccount(deps.db, {
        email: o.email ?? `dev${++emails}-${Math.random().toString(36).slice(2, 8)}@example.com`,
        now: Date.now(),
      });
      if (o.cents) await h.grant(a.id, o.cents);
      return { id: a.id, email: a.email };
    },
    async grant(accountId, cents) {
      await deps.ledger.run((s) => grantCredit(s, { accountId, micros: centsToMicros(cents), reason: 'test', now: Date.now() }));
    },
    async newKey(accountId, o = {}) {
      const k = await createKey(deps.db, { accountId, name: o.name ?? 'test key', mode: o.mode ?? 'live', now: Date.now() });
      return { id: k.id, key: k.key };
    },
    async balanceMicros(accountId) {
      const a = await deps.db
        .selectFrom('accounts')
        .select(['balance_micros', 'held_micros'])
        .where('id', '=', accountId)
        .executeTakeFirstOrThrow();
      return { balance: a.balance_micros, held: a.held_micros };
    },
    verify: () => verifyLedger(deps.db),
    async close() {
      await app.close();
      await deps.openMeters.drain(5000);
      await deps.close();
      await database.drop();
    },
  };
  return h;
}

/** A model with round prices for billing arithmetic in tests. */
export function testModel(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    id: 'bizora',
    backend: 'simulator',
    max_output_tokens: 1000,
    context_window: 128_000,
    max_tokens_field: 'max_completion_tokens',
    responses_api: false,
    kind: 'chat',
    dimensions: 1536,
    price: { input_per_million_micros: 1_000_000, output_per_million_micros: 10_000_000, request_micros: 100 },
    ...overrides,
  };
}

/**
 * The books balance and no hold is left open: for after each test that spent money (a
 * settlement can land just after the client has read the end of its answer).
 */
export async function assertBooksBalance(h: Harness): Promise<void> {
  await eventually(async () => (await h.verify()).openHolds === 0, 5000).catch(() => {});
  const report = await h.verify();
  assert.deepEqual(report.problems, []);
  assert.equal(report.openHolds, 0, 'a hold is still open');
}

/** Polls until `check` passes or the time is up (for effects that land after the response). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
