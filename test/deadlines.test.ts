// Every wait of a request has a deadline, and a running request never loses its hold: a client
// that stops reading mid-stream is cut off, billed for what was produced, and its hold is settled
// long before it could expire; a stream past the upstream deadline ends within a small grace.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { eventually, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream } from './support/mock-upstream.ts';

/** Starts a stream and stops reading it once the first bytes are in: a stalled reader. */
async function stalledStream(h: Harness, key: string): Promise<{ requestId: string; closed: Promise<number> }> {
  const body = JSON.stringify({ model: 'bizora', stream: true, messages: [{ role: 'user', content: 'mock:flood' }] });
  const req = request(`${h.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  req.on('error', () => {});
  req.end(body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  res.on('error', () => {});
  res.pause(); // and never reads again
  const started = performance.now();
  // A reader that never reads does not see the server close, so it is watched from the server.
  const connections = () => new Promise<number>((resolve) => h.app.server.getConnections((_e, n) => resolve(n)));
  const closed = (async () => {
    while ((await connections()) > 0) await new Promise((r) => setTimeout(r, 20));
    req.destroy();
    return performance.now() - started;
  })();
  return { requestId: String(res.headers['x-request-id']), closed };
}

// What this file tests is the HTTP and streaming layer, not storage (the ledger's operations are
// the same code on both databases, and ledger.test.ts and concurrency.test.ts run them on both): SQLite.
for (const kind of ['sqlite'] as const) {
  describe(`deadlines on a stalled reader (${kind})`, () => {
    let upstream: MockUpstream;
    before(async () => {
      upstream = await startMockUpstream();
    });
    after(() => upstream.close());

    async function withServer(env: Record<string, string>, use: (h: Harness, key: string, accountId: string) => Promise<void>) {
      const h = await startHarness(kind, {
        models: [testModel({ backend: 'openai-compatible', upstream_url: upstream.url, max_output_tokens: 100_000 })],
        env,
      });
      try {
        const account = await h.newAccount({ cents: 10_000 });
        const { key } = await h.newKey(account.id);
        await use(h, key, account.id);
      } finally {
        await h.close();
      }
    }

    const usageOf = (h: Harness, id: string) => h.deps.db.selectFrom('usage_records').selectAll().where('id', '=', id).executeTakeFirst();

    test('a client that stops reading is cut off at the client deadline, billed for what was produced, its hold settled', async () => {
      await withServer({ BIZORA_CLIENT_TIMEOUT_MS: '300' }, async (h, key, accountId) => {
        const before = await h.balanceMicros(accountId);
        const { requestId, closed } = await stalledStream(h, key);
        const ms = await closed;
        // Without the deadline it stays open until the upstream timeout (120 s here). The cut-off
        // comes once the socket's buffers are full, which on a loaded machine takes seconds.
        assert.ok(ms < 10_000, `the stalled connection was closed after ${ms.toFixed(0)} ms`);
        await eventually(async () => (await usageOf(h, requestId)) !== undefined);
        const u = await usageOf(h, requestId);
        assert.equal(u?.status, 'cancelled');
        assert.ok((u?.completion_tokens ?? 0) > 0, 'what was produced is counted');
        assert.ok((u?.cost_micros ?? 0) > 0, 'and billed');
        const after = await h.balanceMicros(accountId);
        assert.equal(after.held, 0, 'no hold is left open');
        assert.equal(before.balance - after.balance, u?.cost_micros);
        const hold = await h.deps.db.selectFrom('holds').selectAll().where('request_id', '=', requestId).executeTakeFirstOrThrow();
        assert.equal(hold.status, 'settled');
        assert.ok((hold.closed_at ?? Number.POSITIVE_INFINITY) < hold.expires_at, 'settled before the hold could expire');
        assert.ok((await h.verify()).ok);
      });
    });

    test('a stalled stream ends at the upstream deadline plus a small grace, never later, and is settled at once', async () => {
      // The client deadline is long: only the request's own deadline can end this stream.
      await withServer({ BIZORA_CLIENT_TIMEOUT_MS: '60000', BIZORA_UPSTREAM_TIMEOUT_MS: '500' }, async (h, key, accountId) => {
        const { requestId, closed } = await stalledStream(h, key);
        await eventually(async () => (await usageOf(h, requestId)) !== undefined, 3000);
        const u = await usageOf(h, requestId);
        assert.equal(u?.status, 'failed');
        assert.equal(u?.error_code, 'upstream_timeout');
        assert.ok((u?.cost_micros ?? 0) > 0, 'billed for what was produced before the deadline');
        assert.ok((u?.latency_ms ?? Number.POSITIVE_INFINITY) < 500 + 1000, `settled ${u?.latency_ms} ms after it began`);
        assert.equal((await h.balanceMicros(accountId)).held, 0);
        // Its last bytes get the grace (5 s at most): by then the response is over, sent or cut off.
        await eventually(() => h.deps.inFlight.size === 0, 500 + 5000);
        void closed;
        assert.equal(h.deps.inFlight.size, 0);
        assert.ok((await h.verify()).ok);
      });
    });
  });
}
