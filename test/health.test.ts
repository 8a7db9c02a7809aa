// Load shedding and health: while the event loop lags or the heap is past its limit, new
// requests get a 503 with Retry-After at once; /healthz (liveness) still answers and is not
// logged at info; /readyz says whether the database answers.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { eventually, type Harness, startHarness } from './support/harness.ts';

type ErrorBody = { error: { type: string; code: string | null; message: string } };

async function chat(h: Harness, key: string): Promise<Response> {
  return fetch(`${h.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }),
  });
}

async function expectShed(res: Response): Promise<void> {
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  const body = (await res.json()) as ErrorBody;
  assert.equal(body.error.type, 'api_error');
  assert.equal(body.error.code, 'service_unavailable');
}

describe('load shedding and health (sqlite)', () => {
  test('a heap past its limit: new requests get 503 with Retry-After, /healthz still 200, nothing is held', async (t) => {
    // A limit every heap exceeds: the server is "near its memory limit" from the first sample on.
    const h = await startHarness('sqlite', { env: { BIZORA_MAX_HEAP_USED_MB: '1' } });
    t.after(() => h.close());
    const account = await h.newAccount({ cents: 100 });
    const { key } = await h.newKey(account.id);
    // Requests before the first sample (250 ms) are served as usual.
    await eventually(async () => (await chat(h, key)).status === 503);
    const before = await h.balanceMicros(account.id);
    const holds = (await h.deps.db.selectFrom('holds').select('id').execute()).length;
    for (let i = 0; i < 5; i++) await expectShed(await chat(h, key));
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.deepEqual(await h.balanceMicros(account.id), { ...before, held: 0 });
    assert.equal((await h.deps.db.selectFrom('holds').select('id').execute()).length, holds, 'a shed request never reaches billing');
  });

  test('an event loop that lags: requests are shed while it lags and served again after', async (t) => {
    // A threshold that a busy machine's own scheduling does not reach (50 ms did, in a full run
    // beside the browser suite), and a lag well past it.
    const h = await startHarness('sqlite', { env: { BIZORA_MAX_EVENT_LOOP_DELAY_MS: '200' } });
    t.after(() => h.close());
    const account = await h.newAccount({ cents: 100 });
    const { key } = await h.newKey(account.id, { mode: 'test' });
    assert.equal((await chat(h, key)).status, 200);
    // The server shares this process's event loop: hold it, as a burst of work would.
    const busyUntil = performance.now() + 1000;
    while (performance.now() < busyUntil);
    await eventually(async () => (await chat(h, key)).status === 503, 2000);
    // Once the loop is free again the next samples are normal and requests are served.
    await eventually(async () => (await chat(h, key)).status === 200, 3000);
  });

  test('/readyz answers 200 while the database answers and 503 when it does not; /healthz never touches it', async (t) => {
    const h = await startHarness('sqlite');
    let closed = false;
    t.after(async () => {
      if (!closed) await h.close();
    });
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ok', database: 'sqlite' });
    const before = h.queries.count;
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.equal(h.queries.count, before, '/healthz made no query');
    // The database goes away under the running server.
    await h.deps.db.destroy();
    const down = await fetch(`${h.url}/readyz`);
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as ErrorBody).error.code, 'service_unavailable');
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200, 'liveness does not depend on the database');
    await h.app.close();
    closed = true;
  });

  test('/healthz and /readyz are not logged at info; other requests are', async (t) => {
    const log = new PassThrough();
    let lines = '';
    log.on('data', (d: Buffer) => {
      lines += d.toString();
    });
    const h = await startHarness('sqlite', { env: { BIZORA_LOG_LEVEL: 'info' }, logStream: log });
    t.after(() => h.close());
    for (let i = 0; i < 3; i++) await (await fetch(`${h.url}/healthz`)).arrayBuffer();
    await (await fetch(`${h.url}/readyz`)).arrayBuffer();
    await (await fetch(`${h.baseURL}/models`)).arrayBuffer();
    await eventually(() => lines.includes('/v1/models'));
    assert.doesNotMatch(lines, /\/healthz|\/readyz/);
  });
});
