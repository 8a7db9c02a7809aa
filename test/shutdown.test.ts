// Graceful shutdown with a deadline, on the server as users run it: on SIGTERM it stops
// accepting, lets requests in flight finish for BIZORA_SHUTDOWN_GRACE_SECONDS, then ends the rest
// (a stream still going, a reader that stopped reading), settles them as cancelled and billed for
// what they produced, closes the database and exits 0.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { test } from 'node:test';
import { verifyLedger } from '../src/billing/ledger.ts';
import { openDatabase } from '../src/db/connection.ts';
import { createTestDatabase, testDatabaseKinds } from './support/databases.ts';
import { startMockUpstream } from './support/mock-upstream.ts';
import { seedAccount, serve } from './support/served.ts';

const GRACE_SECONDS = 2;

/** A stream read to its end; resolves with what arrived. */
async function readStream(base: string, key: string, say: string): Promise<{ id: string | null; text: string }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bizora', stream: true, messages: [{ role: 'user', content: say }] }),
  });
  assert.equal(res.status, 200);
  return { id: res.headers.get('x-request-id'), text: await res.text().catch(() => '') };
}

/** A stream whose reader stops reading after its first bytes. */
async function stalledStream(base: string, key: string): Promise<{ id: string; destroy(): void }> {
  const body = JSON.stringify({ model: 'bizora', stream: true, messages: [{ role: 'user', content: 'mock:flood' }] });
  const req = request(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  req.on('error', () => {});
  req.end(body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.on('error', () => {});
  res.pause();
  // A reader that does not read does not see the server close either: it is let go at the end.
  return { id: String(res.headers['x-request-id']), destroy: () => req.destroy() };
}

for (const kind of testDatabaseKinds()) {
  test(`SIGTERM: requests finish within the grace, the rest are ended and billed, the process exits 0 (${kind})`, {
    timeout: 60_000,
  }, async (t) => {
    const upstream = await startMockUpstream();
    const database = await createTestDatabase(kind);
    t.after(async () => {
      await upstream.close();
      await database.drop();
    });
    const { accountId, key } = await seedAccount(database.url, `shutdown-${kind}@example.com`, 10_000);
    const server = await serve({
      ...process.env,
      BIZORA_DATABASE_URL: database.url,
      BIZORA_UPSTREAM_URL: upstream.url,
      BIZORA_LOG_LEVEL: 'warn',
      BIZORA_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      // Only the shutdown may end the stalled reader here.
      BIZORA_CLIENT_TIMEOUT_MS: '60000',
    });
    t.after(() => server.process.kill('SIGKILL'));

    // In flight at SIGTERM: a slow stream that ends within the grace (2 s at a chunk per 100 ms),
    // a stream that would go on for minutes, and a reader that has stopped reading.
    const finishing = readStream(server.base, key, 'mock:slow');
    const endless = readStream(server.base, key, 'mock:flood');
    const stalled = await stalledStream(server.base, key);
    await new Promise((r) => setTimeout(r, 100));
    const signalled = performance.now();
    server.process.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(fetch(`${server.base}/healthz`), 'no new connection is accepted once shutting down');

    const code = await server.exited;
    const exitMs = performance.now() - signalled;
    assert.equal(code, 0, server.output());
    assert.ok(exitMs > GRACE_SECONDS * 1000 - 200, `exited after ${exitMs.toFixed(0)} ms, before the grace was over`);
    assert.ok(exitMs < GRACE_SECONDS * 1000 + 4000, `exited after ${exitMs.toFixed(0)} ms`);
    const [done, ended] = await Promise.all([finishing, endless]);
    stalled.destroy();
    assert.ok(done.text.endsWith('data: [DONE]\n\n'), 'the stream that ended within the grace is complete');
    assert.match(ended.text, /"code":"service_unavailable"/, 'the stream ended by the shutdown says so');

    const check = openDatabase(database.url);
    try {
      const usage = await check.db.selectFrom('usage_records').selectAll().execute();
      const byId = new Map(usage.map((u) => [u.id, u]));
      assert.equal(byId.get(String(done.id))?.status, 'succeeded');
      for (const id of [String(ended.id), stalled.id]) {
        const u = byId.get(id);
        assert.equal(u?.status, 'cancelled', id);
        assert.ok((u?.completion_tokens ?? 0) > 0 && (u?.cost_micros ?? 0) > 0, `${id} is billed for what it produced`);
      }
      assert.deepEqual(await check.db.selectFrom('holds').select('id').where('status', '=', 'open').execute(), []);
      const report = await verifyLedger(check.db);
      assert.deepEqual(report.problems, []);
      const account = await check.db
        .selectFrom('accounts')
        .select(['balance_micros', 'held_micros'])
        .where('id', '=', accountId)
        .executeTakeFirstOrThrow();
      assert.equal(account.held_micros, 0);
      const charged = usage.reduce((s, u) => s + u.cost_micros, 0);
      assert.equal(account.balance_micros, 10_000 * 10_000 - charged);
    } finally {
      await check.close();
    }
  });
}
