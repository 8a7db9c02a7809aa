// Crash safety: the server as users run it (`bin/bizora.js serve`), killed with SIGKILL while
// JSON and streamed requests hold money, restarted on the same database. Once the sweeper has
// released the holds of the requests that died (its clock moved past their time-to-live, no
// waiting for it), `ledger verify` passes, every hold is closed, no request is billed twice, and
// every balance is its grants minus its charges.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { HoldSweeper } from '../src/billing/hold-sweeper.ts';
import { verifyLedger } from '../src/billing/ledger.ts';
import { createLedgerExecutor } from '../src/billing/ledger-executor.ts';
import { centsToMicros } from '../src/billing/pricing.ts';
import { openDatabase } from '../src/db/connection.ts';
import { createTestDatabase, testDatabaseKinds } from './support/databases.ts';
import { startMockUpstream } from './support/mock-upstream.ts';
import { BIN, type Served, seedAccount, serve, whenReady } from './support/served.ts';

const ROUNDS = 2;
const GRANT_CENTS = 1_000;
const HOLD_TTL_SECONDS = 900;

type Sent = { requestId: string | null; status: number | null; completed: boolean };

/** A chat completion; resolves when its answer is complete or the connection breaks. */
async function chat(base: string, key: string, say: string, stream: boolean, onStarted?: () => void, track?: Sent[]): Promise<Sent> {
  const sent: Sent = { requestId: null, status: null, completed: false };
  track?.push(sent);
  try {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: say }], stream, max_tokens: 50 }),
      signal: AbortSignal.timeout(30_000),
    });
    sent.requestId = res.headers.get('x-request-id');
    sent.status = res.status;
    const reader = res.body?.getReader();
    let text = '';
    for (;;) {
      const r = await reader?.read();
      if (!r || r.done) break;
      text += Buffer.from(r.value).toString();
      // A stream's first event: the hold is placed and the backend is answering.
      if (onStarted && text.includes('data: ')) {
        onStarted();
        onStarted = undefined;
      }
    }
    sent.completed = stream ? text.includes('data: [DONE]') : res.ok;
  } catch {
    // The server was killed under the request.
  }
  return sent;
}

for (const kind of testDatabaseKinds()) {
  test(`a server killed with SIGKILL mid-request loses no hold and bills nothing twice once restarted and swept (${kind})`, {
    timeout: 90_000,
  }, async (t) => {
    const started = performance.now();
    const upstream = await startMockUpstream();
    const database = await createTestDatabase(kind);
    const { accountId, key } = await seedAccount(database.url, `crash-${kind}@example.com`, GRANT_CENTS);
    const account = { id: accountId };
    let server: Served | undefined;
    t.after(async () => {
      server?.process.kill('SIGKILL');
      await upstream.close();
      await database.drop();
    });

    const env = {
      ...process.env,
      BIZORA_DATABASE_URL: database.url,
      BIZORA_UPSTREAM_URL: upstream.url,
      BIZORA_LOG_LEVEL: 'warn',
      BIZORA_HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
    };
    const completed: Sent[] = [];
    const killed: Sent[] = [];
    const diedInFlight: Sent[] = [];
    const startMs: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const t0 = performance.now();
      server = await serve(env);
      startMs.push(performance.now() - t0);
      const { base } = server;
      // Requests that finish before the crash: billed once, and never again after it.
      completed.push(...(await Promise.all([chat(base, key, 'hello', false), chat(base, key, 'hello', true)])));
      // Not while the new process sheds load (its first requests on a busy machine can make it).
      await whenReady(base);
      // Requests holding money when the process dies: JSON ones the backend never answers,
      // streams it answers slowly (a chunk every 100 ms).
      const seenBefore = upstream.requests.length;
      let streaming = 0;
      const answered: Sent[] = [];
      const inFlight = [
        ...Array.from({ length: 3 }, () => chat(base, key, 'mock:stall', false, undefined, answered)),
        ...Array.from({ length: 3 }, () => chat(base, key, 'mock:slow', true, () => streaming++, answered)),
      ];
      const until = performance.now() + 5_000;
      while (upstream.requests.length < seenBefore + 6 || streaming < 3) {
        assert.ok(
          performance.now() < until,
          `${upstream.requests.length - seenBefore} of 6 requests reached the backend, ${streaming} of 3 streams started (round ${round}; statuses ${answered.map((a) => a.status ?? 'none yet').join(', ')})`,
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      // And some that are still being authenticated or held when it dies.
      const racing = Array.from({ length: 4 }, (_, i) => chat(base, key, i % 2 ? 'mock:slow' : 'hello', i % 2 === 1));
      await new Promise((r) => setImmediate(r));
      server.process.kill('SIGKILL');
      assert.equal(await server.exited, null, 'killed by the signal');
      const broken = await Promise.all(inFlight);
      assert.ok(
        broken.every((s) => !s.completed),
        'no request in flight completed',
      );
      diedInFlight.push(...broken);
      // A racing request may have finished before the signal: then it counts as completed.
      for (const s of await Promise.all(racing)) (s.completed ? completed : killed).push(s);
      killed.push(...broken);
    }
    for (const s of completed) assert.ok(s.completed && s.status === 200, `a request before the crash: ${s.status}`);

    // Restarted on the crashed database, the server serves (and bills) as before.
    server = await serve(env);
    const after = await Promise.all([chat(server.base, key, 'hello again', false), chat(server.base, key, 'hello again', true)]);
    for (const s of after) assert.ok(s.completed && s.status === 200, `a request after the restart: ${s.status}`);
    completed.push(...after);

    const check = openDatabase(database.url);
    let swept = 0;
    try {
      const openHolds = await check.db.selectFrom('holds').select('request_id').where('status', '=', 'open').execute();
      // Every request that reached the backend before a crash held money that nobody settled.
      assert.ok(openHolds.length >= ROUNDS * 6 && openHolds.length <= killed.length, `${openHolds.length} open holds`);
      const sweeper = new HoldSweeper(check.db, createLedgerExecutor(check), { now: () => Date.now() + 2 * HOLD_TTL_SECONDS * 1000 }, 1000);
      assert.equal(await sweeper.sweep(), openHolds.length);
      swept = openHolds.length;
      assert.deepEqual(await check.db.selectFrom('holds').select('id').where('status', '=', 'open').execute(), []);

      const report = await verifyLedger(check.db);
      assert.deepEqual(report.problems, []);
      const acct = await check.db
        .selectFrom('accounts')
        .select(['balance_micros', 'held_micros'])
        .where('id', '=', account.id)
        .executeTakeFirstOrThrow();
      assert.equal(acct.held_micros, 0);
      const entries = await check.db.selectFrom('ledger_entries').select(['kind', 'amount_micros', 'request_id']).execute();
      const grants = entries.filter((e) => e.kind === 'grant').reduce((s, e) => s + e.amount_micros, 0);
      const usage = entries.filter((e) => e.kind === 'usage');
      const charges = usage.reduce((s, e) => s - e.amount_micros, 0);
      assert.equal(grants, centsToMicros(GRANT_CENTS));
      assert.equal(acct.balance_micros, grants - charges);
      // No request billed twice: one charge per request at most, and one usage record.
      const charged = usage.map((e) => e.request_id);
      assert.equal(new Set(charged).size, charged.length, 'a request was charged twice');
      // Every request that completed was charged; none that died before its answer was complete.
      for (const s of completed) assert.ok(charged.includes(s.requestId), `${s.requestId} completed but was not charged`);
      const diedIds = diedInFlight.map((s) => s.requestId).filter((id) => id !== null);
      assert.ok(diedIds.length >= ROUNDS * 3, 'the streams that died had started');
      assert.deepEqual(
        charged.filter((id) => id !== null && diedIds.includes(id)),
        [],
        'a request that died was charged',
      );
      const expired = await check.db.selectFrom('holds').select('request_id').where('status', '=', 'expired').execute();
      for (const id of diedIds)
        assert.ok(
          expired.some((h) => h.request_id === id),
          `the hold of ${id} was released`,
        );
    } finally {
      await check.close();
    }

    // And the command operators run says so too.
    server.process.kill('SIGTERM');
    assert.equal(await server.exited, 0, server.output());
    server = undefined;
    const verify = await promisify(execFile)(process.execPath, [BIN, 'ledger', 'verify', '--json'], { env });
    const report = JSON.parse(verify.stdout) as { ok: boolean; openHolds: number };
    assert.equal(report.ok, true);
    assert.equal(report.openHolds, 0);
    console.log(
      `${kind}: ${ROUNDS} kill rounds, ${killed.length} requests killed, ${completed.length} completed, ${swept} holds released by the sweeper; ` +
        `server starts ${startMs.map((ms) => ms.toFixed(0)).join(', ')} ms; test ${(performance.now() - started).toFixed(0)} ms`,
    );
  });
}
