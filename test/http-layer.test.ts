// The HTTP layer under clients that misbehave in time rather than in content: a body over the
// limit that is still being uploaded when the 413 is ready, and requests that arrive while the
// server shuts down. (Malformed requests of every other kind: fuzz.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { type Harness, startHarness } from './support/harness.ts';
import { parseResponse, rawHttp, requestBytes } from './support/raw-http.ts';

const MB = 1024 * 1024;

/**
 * Runs `source` (CommonJS, an async function body with `data` in scope) in a worker thread: the
 * client gets an event loop of its own, as a client in another process has. With client and
 * server on one loop the server never closes mid-upload at a bad moment, and the defect hides.
 */
async function inWorker<T>(source: string, data: unknown): Promise<T> {
  const worker = new Worker(
    `const { parentPort, workerData: data } = require('node:worker_threads');
     (async () => { ${source} })().then((v) => parentPort.postMessage({ ok: v }), (e) => parentPort.postMessage({ err: String(e && e.stack || e) }));`,
    { eval: true, workerData: data },
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const msg = await new Promise<{ ok?: T; err?: string }>((resolve) => {
      worker.once('message', resolve);
      timer = setTimeout(() => resolve({ err: 'the worker took over 30 s' }), 30_000);
    });
    if (msg.err) throw new Error(msg.err);
    return msg.ok as T;
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

describe('a body over the limit gets a 413 the client can read', () => {
  let h: Harness;
  let key: string;
  before(async () => {
    // The default limit, 8 MiB.
    h = await startHarness('sqlite');
    ({ key } = await h.newKey((await h.newAccount({ cents: 100 })).id));
  });
  after(() => h.close());

  test('fetch of a 12 MB body gets the 413, 10 times in a row', async () => {
    const outcomes = await inWorker<string[]>(
      `const body = JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'x'.repeat(12_000_000) }] });
       const out = [];
       for (let i = 0; i < 10; i++) {
         try {
           const res = await fetch(data.url, { method: 'POST', headers: { authorization: 'Bearer ' + data.key, 'content-type': 'application/json' }, body });
           const json = await res.json();
           out.push(res.status + ' ' + json.error.code + ' ' + res.headers.get('x-should-retry') + ' ' + /^req_/.test(res.headers.get('x-request-id')));
         } catch (e) {
           out.push('failed: ' + ((e.cause && e.cause.code) || e.message));
         }
       }
       return out;`,
      { url: `${h.baseURL}/chat/completions`, key },
    );
    assert.deepEqual(outcomes, Array(10).fill('413 body_too_large false true'));
  });

  test('the openai SDK reports an APIError with status 413 after one request, not three', async () => {
    const result = await inWorker<{ status: number; name: string; requests: number }>(
      `const OpenAI = require('openai');
       let requests = 0;
       const client = new OpenAI({ apiKey: data.key, baseURL: data.baseURL, fetch: (url, init) => { requests++; return fetch(url, init); } });
       try {
         await client.chat.completions.create({ model: 'bizora', messages: [{ role: 'user', content: 'x'.repeat(12_000_000) }] });
         return { status: 200, name: 'none', requests };
       } catch (e) {
         return { status: e.status, name: e.constructor.name, requests };
       }`,
      { baseURL: h.baseURL, key },
    );
    assert.deepEqual(result, { status: 413, name: 'APIError', requests: 1 });
  });

  test('a client still uploading reads the 413, and the connection closes cleanly once its body is in', async () => {
    const port = Number(new URL(h.url).port);
    const total = 12 * MB;
    const head = requestBytes('POST', '/v1/chat/completions', [
      ['Host', 'x'],
      ['Authorization', `Bearer ${key}`],
      ['Content-Type', 'application/json'],
      ['Content-Length', String(total)],
    ]);
    // The body in 64 pieces with pauses: most of it is sent after the answer is out.
    const pieces = Array.from({ length: 64 }, () => Buffer.alloc(total / 64, 0x20));
    const res = await rawHttp(port, [head, ...pieces], { pauseMs: 5, untilClose: true, allowHalfOpen: true, timeoutMs: 10_000 });
    assert.equal(res.socketError, null, 'the upload was cut off');
    assert.ok(res.ms > 64 * 5, `the connection ended after ${res.ms} ms, before the body was sent`);
    assert.ok(res.closedCleanly, 'the server did not close with a FIN');
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, 'close');
    assert.equal(res.headers['x-should-retry'], 'false');
    assert.equal(JSON.parse(res.body).error.code, 'body_too_large');
  });

  test('a body announced as more than four times the limit is answered and cut off at once', async () => {
    const port = Number(new URL(h.url).port);
    const head = requestBytes('POST', '/v1/chat/completions', [
      ['Host', 'x'],
      ['Authorization', `Bearer ${key}`],
      ['Content-Type', 'application/json'],
      ['Content-Length', String(100 * MB)],
    ]);
    const res = await rawHttp(port, head, { untilClose: true, timeoutMs: 5000 });
    assert.equal(res.status, 413);
    assert.ok(res.ms < 1000, `closed after ${res.ms} ms`);
  });
});

describe('shutting down', () => {
  // Without the server closing it, the close waits for the client, which never hangs up: the
  // test's timeout fails it, and its after hook closes the socket.
  test('a connection that never sent a request does not hold the close up', { timeout: 5000 }, async (t) => {
    const h = await startHarness('sqlite');
    const { connect } = await import('node:net');
    const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
    t.after(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const started = performance.now();
    await h.app.close();
    await closed;
    assert.ok(performance.now() - started < 1000, `closed after ${Math.round(performance.now() - started)} ms`);
    await h.close().catch(() => {});
  });

  // A server that never closes the connection fails the test by its timeout.
  test('a request that arrives on a kept-alive connection while the server closes gets a 503 in our shape, with connection: close', {
    timeout: 5000,
  }, async (t) => {
    const h = await startHarness('sqlite');
    const { key } = await h.newKey((await h.newAccount({ cents: 100 })).id);
    const port = Number(new URL(h.url).port);
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A first request whose body is still arriving: the connection is busy, so the shutdown does
    // not close it as idle; a second request follows it on the same connection.
    const body = JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    socket.write(
      requestBytes('POST', '/v1/chat/completions', [
        ['Host', 'x'],
        ['Authorization', `Bearer ${key}`],
        ['Content-Type', 'application/json'],
        ['Content-Length', String(body.length)],
      ]),
    );
    await sleep(50);
    const closing = h.app.close();
    await sleep(50);
    socket.write(body);
    socket.write(
      requestBytes('GET', '/v1/models', [
        ['Host', 'x'],
        ['Authorization', `Bearer ${key}`],
      ]),
    );
    await closed;
    await closing;
    await h.close().catch(() => {});

    const all = Buffer.concat(received);
    const second = all.indexOf('HTTP/1.1 ', 10);
    assert.ok(second > 0, `one answer only: ${all.toString('latin1').slice(0, 300)}`);
    const first = parseResponse(all.subarray(0, second));
    assert.equal(first.status, 200, first.body);
    const late = parseResponse(all.subarray(second));
    assert.equal(late.status, 503, late.raw);
    assert.equal(late.headers.connection, 'close');
    assert.match(late.headers['x-request-id'] ?? '', /^req_/);
    assert.deepEqual(JSON.parse(late.body), {
      error: { message: 'The service is temporarily unavailable.', type: 'api_error', code: 'service_unavailable' },
    });
  });
});
