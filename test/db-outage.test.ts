// When PostgreSQL stops answering, the API says so at once (503 service_unavailable with
// Retry-After, within about BIZORA_DB_TIMEOUT_MS), never hangs, loses no hold, and serves again
// by itself when the database answers again. The database is made to fail by a TCP proxy this
// test owns (test/support/tcp-proxy.ts), so the shared PostgreSQL is never touched.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAGIC } from '../src/backends/simulator.ts';
import { HoldSweeper } from '../src/billing/hold-sweeper.ts';
import { verifyLedger } from '../src/billing/ledger.ts';
import { createLedgerExecutor } from '../src/billing/ledger-executor.ts';
import { type Database, databaseUnavailable, openDatabase } from '../src/db/connection.ts';
import { PG_ADMIN_URL, testDatabaseKinds } from './support/databases.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';

const DEADLINE_MS = 500;
/** How long a 503 may take: the deadline for a pooled connection plus the one for the statement, and some slack for a busy machine. */
const ANSWER_WITHIN_MS = 3 * DEADLINE_MS;
const skip = testDatabaseKinds().includes('postgres') ? false : 'needs PostgreSQL, which is not reachable (see the line npm test printed)';

type Answer = { status: number; ms: number; requestId: string; retryAfter: string | null; body: string };

async function call(h: Harness, key: string, path: string, body?: unknown): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${h.url}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    // Never hangs: a request that outlives this fails the test instead of stalling it.
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return {
    status: res.status,
    ms: performance.now() - started,
    requestId: res.headers.get('x-request-id') ?? '',
    retryAfter: res.headers.get('retry-after'),
    body: text,
  };
}

const chat = (h: Harness, key: string, opts: { stream?: boolean; say?: string; max_tokens?: number } = {}) =>
  call(h, key, '/v1/chat/completions', {
    model: 'bizora',
    messages: [{ role: 'user', content: opts.say ?? 'Hello there.' }],
    ...(opts.max_tokens ? { max_tokens: opts.max_tokens } : {}),
    ...(opts.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

function assertUnavailable(a: Answer, what: string): void {
  assert.equal(a.status, 503, `${what}: ${a.status} ${a.body}`);
  assert.ok(Number(a.retryAfter) > 0, `${what}: Retry-After is ${a.retryAfter}`);
  const body = JSON.parse(a.body) as { error: { type: string; code: string; message: string } };
  assert.equal(body.error.type, 'api_error');
  assert.equal(body.error.code, 'service_unavailable');
  assert.equal(typeof body.error.message, 'string');
  assert.doesNotMatch(a.body, /at \w|\.ts:|\/src\//, 'no stack trace or path');
  assert.ok(a.ms < ANSWER_WITHIN_MS, `${what}: answered after ${a.ms.toFixed(0)} ms`);
}

const summary = (answers: Answer[]) => {
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
  return `${answers.length} answers, median ${ms[Math.floor(ms.length / 2)]?.toFixed(0)} ms, slowest ${ms.at(-1)?.toFixed(0)} ms`;
};

/** Requests one after another until one succeeds; then `steady` more must all succeed. */
async function recovery(h: Harness, key: string, steady: number): Promise<{ ms: number; failedBefore: number }> {
  const started = performance.now();
  let failedBefore = 0;
  for (;;) {
    const a = await chat(h, key);
    if (a.status === 200) break;
    assert.equal(a.status, 503, a.body);
    failedBefore++;
    assert.ok(performance.now() - started < 5_000, 'the server did not recover within 5 s');
    await new Promise((r) => setTimeout(r, 25));
  }
  const ms = performance.now() - started;
  for (let i = 0; i < steady; i++) {
    const a = await chat(h, key, { stream: i % 2 === 1 });
    assert.equal(a.status, 200, `request ${i + 1} after recovery: ${a.status} ${a.body}`);
  }
  return { ms, failedBefore };
}

/**
 * After an outage no hold is lost: a request that got a 503 before it held anything never held
 * anything; the only holds left open are those of requests that could not settle, and the
 * sweeper (its clock moved past their time-to-live) releases them; the books verify and the
 * account's balance is its grants less its charges, each request charged at most once.
 */
async function noHoldLost(h: Harness, direct: Database, accountId: string, unavailable: Answer[], unsettled: string[]): Promise<void> {
  const ids = unavailable.map((a) => a.requestId);
  assert.ok(ids.length > 0 && ids.every((id) => id.startsWith('req_')));
  assert.deepEqual(await direct.db.selectFrom('holds').select('request_id').where('request_id', 'in', ids).execute(), []);
  const openHolds = () =>
    direct.db.selectFrom('holds').select('request_id').where('account_id', '=', accountId).where('status', '=', 'open').execute();
  const open = await openHolds();
  assert.ok(
    open.every((o) => unsettled.includes(o.request_id)),
    `open holds: ${open.map((o) => o.request_id)}`,
  );
  const ttlMs = h.deps.config.holdTtlSeconds * 1000;
  const sweeper = new HoldSweeper(direct.db, createLedgerExecutor(direct), { now: () => Date.now() + 2 * ttlMs }, 1000);
  const expired = await sweeper.sweep();
  console.log(
    `${open.length} holds open after the outage (of ${unsettled.length} requests that could not settle); the sweeper released ${expired}`,
  );
  assert.ok(expired >= open.length);
  assert.deepEqual(await openHolds(), []);

  assert.deepEqual((await verifyLedger(direct.db)).problems, []);
  const acct = await direct.db
    .selectFrom('accounts')
    .select(['balance_micros', 'held_micros'])
    .where('id', '=', accountId)
    .executeTakeFirstOrThrow();
  assert.equal(acct.held_micros, 0);
  const entries = await direct.db
    .selectFrom('ledger_entries')
    .select(['kind', 'amount_micros', 'request_id'])
    .where('account_id', '=', accountId)
    .execute();
  const grants = entries.filter((e) => e.kind === 'grant').reduce((s, e) => s + e.amount_micros, 0);
  const charges = entries.filter((e) => e.kind === 'usage').reduce((s, e) => s - e.amount_micros, 0);
  assert.equal(grants, GRANTED_CENTS * 10_000);
  assert.ok(charges > 0);
  assert.equal(acct.balance_micros, grants - charges);
  const charged = entries.filter((e) => e.kind === 'usage').map((e) => e.request_id);
  assert.equal(new Set(charged).size, charged.length);
}

const GRANTED_CENTS = 1_000;

describe('PostgreSQL stops answering', { skip }, () => {
  let proxy: TcpProxy;
  let h: Harness;
  let direct: Database;
  /** An account of the test's own with credit, and a key. */
  const funded = async () => {
    const account = await h.newAccount({ cents: GRANTED_CENTS });
    return { accountId: account.id, key: (await h.newKey(account.id)).key };
  };

  before(async () => {
    const pgUrl = new URL(PG_ADMIN_URL);
    proxy = await startTcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    h = await startHarness('postgres', {
      env: { BIZORA_DB_TIMEOUT_MS: String(DEADLINE_MS) },
      models: [testModel()],
      connectVia: (url) => proxy.via(url),
    });
    // Checks look at the database directly, not through the proxy.
    direct = openDatabase(h.databaseUrl);
  });
  after(async () => {
    proxy?.resume();
    await direct?.close();
    await h?.close();
    await proxy?.close();
  });

  test('while PostgreSQL stalls, requests get 503 service_unavailable within about the deadline, the server serves again by itself, and no hold is lost', async () => {
    const { accountId, key } = await funded();
    /** Requests that held money and could not settle while the database stalled. */
    const unsettled: string[] = [];
    // Pooled connections exist: once stalled, they never answer again.
    for (let i = 0; i < 3; i++) assert.equal((await chat(h, key, { stream: i === 1 })).status, 200);
    // Requests holding money when the database stalls: the JSON ones (the simulator answers them
    // after a second) and the streams (a chunk every 250 ms) settle while it is stalled.
    const slow = { say: `tell a slow story ${MAGIC.slow}`, max_tokens: 20 };
    const inFlightJson = Array.from({ length: 6 }, () => chat(h, key, slow));
    const inFlightStreams = [0, 1].map(() => chat(h, key, { ...slow, stream: true }));
    await new Promise((r) => setTimeout(r, 300));

    proxy.stall();
    const stalledAt = performance.now();
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, () => chat(h, key)),
      ...Array.from({ length: 4 }, () => chat(h, key, { stream: true })),
      call(h, key, '/v1/key'),
    ]);
    for (let i = 0; i < 3; i++) answers.push(await chat(h, key));
    for (const [i, a] of answers.entries()) assertUnavailable(a, `request ${i + 1} while stalled`);
    console.log(`stalled: new requests: ${summary(answers)}`);

    // The JSON requests in flight could not settle: 503 too, about a deadline after the answer
    // came back from the backend (a second after they started).
    const settledInStall = await Promise.all(inFlightJson);
    console.log(`stalled: JSON requests in flight: ${summary(settledInStall)} from their start`);
    for (const [i, a] of settledInStall.entries()) {
      assertUnavailable({ ...a, ms: a.ms - 1_000 }, `JSON request ${i + 1} in flight`);
    }
    unsettled.push(...settledInStall.map((a) => a.requestId));
    // The streams end (their settlement could not be written: the sweeper releases their holds).
    for (const s of await Promise.all(inFlightStreams)) {
      assert.equal(s.status, 200);
      unsettled.push(s.requestId);
      console.log(`stalled: a stream in flight ended after ${s.ms.toFixed(0)} ms with ${s.body.trim().split('\n\n').at(-1)}`);
    }
    console.log(`stalled for ${(performance.now() - stalledAt).toFixed(0)} ms`);

    proxy.resume();
    const r = await recovery(h, key, 20);
    console.log(`stalled: recovered ${r.ms.toFixed(0)} ms after PostgreSQL answered again (${r.failedBefore} more 503s first)`);
    assert.ok(r.ms < 2_000, `recovered after ${r.ms.toFixed(0)} ms`);
    await noHoldLost(h, direct, accountId, answers, unsettled);
  });

  test('a pooled connection that stalled is discarded, not handed out again', async () => {
    // Queries of the server's own (Kysely: the sweeper, the dashboard, a ledger operation's
    // later statements), each on a pooled connection when the database stalls.
    const query = () => h.deps.db.selectFrom('accounts').select('id').execute();
    await Promise.all(Array.from({ length: 4 }, query));
    proxy.stall();
    const stalled = await Promise.allSettled(Array.from({ length: 4 }, query));
    for (const q of stalled)
      assert.ok(q.status === 'rejected' && databaseUnavailable(q.reason), String(q.status === 'rejected' && q.reason));
    proxy.resume();
    // Those connections never answer again; had they gone back to the pool, every query below
    // would wait on one of them until its deadline.
    const started = performance.now();
    for (let i = 0; i < 30; i++) await query();
    const ms = performance.now() - started;
    console.log(`after a stall: 30 queries one after another in ${ms.toFixed(0)} ms`);
    assert.ok(ms < DEADLINE_MS, `30 queries took ${ms.toFixed(0)} ms`);
  });

  test('while PostgreSQL refuses connections, requests get 503 service_unavailable at once, the server serves again by itself, and no hold is lost', async () => {
    const { accountId, key } = await funded();
    proxy.refuse();
    const answers = await Promise.all([...Array.from({ length: 6 }, () => chat(h, key)), chat(h, key, { stream: true })]);
    for (let i = 0; i < 3; i++) answers.push(await chat(h, key));
    for (const [i, a] of answers.entries()) assertUnavailable(a, `request ${i + 1} while refused`);
    console.log(`refused: ${summary(answers)}`);
    proxy.resume();
    const r = await recovery(h, key, 10);
    console.log(`refused: recovered ${r.ms.toFixed(0)} ms after PostgreSQL answered again (${r.failedBefore} more 503s first)`);
    assert.ok(r.ms < 2_000, `recovered after ${r.ms.toFixed(0)} ms`);
    await noHoldLost(h, direct, accountId, answers, []);
  });
});

test('databaseUnavailable tells a database that did not answer from a statement that failed', () => {
  const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });
  const unavailable = [
    new Error('Query read timeout'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated due to connection timeout'),
    new Error('Connection terminated unexpectedly'),
    withCode('57014', 'canceling statement due to statement timeout'),
    withCode('57P01', 'terminating connection due to administrator command'),
    withCode('53300', 'sorry, too many clients already'),
    withCode('ECONNREFUSED'),
    withCode('ECONNRESET'),
    withCode('SQLITE_BUSY'),
  ];
  for (const err of unavailable) assert.ok(databaseUnavailable(err), String(err));
  const failed = [withCode('42601', 'syntax error'), withCode('23505', 'duplicate key'), new Error('boom'), null, undefined, 'text'];
  for (const err of failed) assert.ok(!databaseUnavailable(err), String(err));
});
