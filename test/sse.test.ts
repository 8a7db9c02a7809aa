import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { SSE_HEADERS, SseWriter } from '../src/gateway/sse.ts';

const EVENTS = 20_000;

/** Serves `handler` on a free loopback port for the length of `use`. */
async function withServer(handler: RequestListener, use: (port: number) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await use((server.address() as AddressInfo).port);
  } finally {
    server.close();
  }
}
const PAD = 'x'.repeat(1000);
const writerOptions = (o: { stallMs?: number; signal?: AbortSignal } = {}) => ({
  stallMs: o.stallMs ?? 10_000,
  signal: o.signal ?? new AbortController().signal,
  lingerMs: 1000,
});

describe('server-sent events out', () => {
  test('a reader that stops reading stops the writer; nothing is lost or reordered, and [DONE] ends it', { timeout: 10_000 }, async () => {
    let sent = 0;
    let maxQueued = 0;
    let out: ServerResponse | undefined;
    const writer: RequestListener = async (_req, res) => {
      out = res;
      res.writeHead(200, SSE_HEADERS);
      const sse = new SseWriter(res, writerOptions());
      for (let i = 0; i < EVENTS; i++) {
        await sse.send({ i, pad: PAD });
        sent++;
        maxQueued = Math.max(maxQueued, res.writableLength);
        // Each event its own upstream read, as from a slow model.
        if (i % 4 === 3) await nextTurn();
      }
      sse.done();
    };
    await withServer(writer, async (port) => {
      const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.pause();
      // Until the socket's buffers are full and the writer waits for them to drain (how long that
      // takes depends on the machine's load, not on the writer).
      while (!out?.writableNeedDrain) await sleep(10);
      const sentWhilePaused = sent;
      await sleep(200);
      // 20 MB is more than the socket buffers hold: the writer waits for the reader.
      assert.ok(sentWhilePaused < EVENTS, `the writer went on to ${sentWhilePaused} events with nobody reading`);
      assert.equal(sent, sentWhilePaused, 'the writer kept writing while the reader was paused');
      // At most one read's worth of events over Node's high-water mark is ever queued in the process.
      assert.ok(maxQueued < 64 * 1024, `${maxQueued} bytes queued in the process`);

      res.setEncoding('utf8');
      let body = '';
      res.on('data', (d: string) => {
        body += d;
      });
      res.resume();
      await once(res, 'end');
      const frames = body.split('\n\n').filter(Boolean);
      assert.equal(frames.length, EVENTS + 1);
      frames.slice(0, EVENTS).forEach((f, i) => {
        assert.equal((JSON.parse(f.slice('data: '.length)) as { i: number }).i, i);
      });
      assert.equal(frames[EVENTS], 'data: [DONE]');
    });
  });

  test('the events of one read leave in one write, and the last ones together with [DONE]', async () => {
    const writes: string[] = [];
    const writer: RequestListener = async (_req, res) => {
      res.writeHead(200, SSE_HEADERS);
      const write = res.write.bind(res);
      res.write = ((chunk: string, ...rest: never[]) => {
        writes.push(String(chunk));
        return write(chunk, ...rest);
      }) as typeof res.write;
      const end = res.end.bind(res);
      res.end = ((chunk: string) => {
        writes.push(`END:${chunk}`);
        return end(chunk);
      }) as typeof res.end;
      const sse = new SseWriter(res, writerOptions());
      // As in the gateway: the events of one upstream read come out of an async generator.
      async function* oneRead() {
        yield 'Hello';
        yield ' there';
      }
      for await (const word of oneRead()) await sse.send({ word });
      await nextTurn();
      await sse.send({ usage: 1 });
      sse.done();
    };
    await withServer(writer, async (port) => {
      const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      assert.equal(body, 'data: {"word":"Hello"}\n\ndata: {"word":" there"}\n\ndata: {"usage":1}\n\ndata: [DONE]\n\n');
      assert.deepEqual(writes, ['data: {"word":"Hello"}\n\ndata: {"word":" there"}\n\n', 'END:data: {"usage":1}\n\ndata: [DONE]\n\n']);
    });
  });

  test('a reader that stops reading is cut off at the stall deadline, and the writer goes on at once', async () => {
    let result: { stalled: boolean; sent: number; ms: number } | undefined;
    const finished = new Promise<void>((resolve) => {
      const writer: RequestListener = async (_req, res) => {
        res.writeHead(200, SSE_HEADERS);
        const sse = new SseWriter(res, writerOptions({ stallMs: 100 }));
        let sent = 0;
        let stalledAt = 0;
        for (let i = 0; i < EVENTS && sse.open; i++) {
          if (!stalledAt && res.writableNeedDrain) stalledAt = performance.now();
          await sse.send({ i, pad: PAD });
          sent++;
          if (i % 4 === 3) await nextTurn();
        }
        result = { stalled: sse.stalled, sent, ms: performance.now() - stalledAt };
        resolve();
      };
      void withServer(writer, async (port) => {
        const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' });
        req.on('error', () => {});
        req.end();
        const [res] = (await once(req, 'response')) as [IncomingMessage];
        res.on('error', () => {});
        res.pause(); // and never reads again
        await finished;
      });
    });
    await finished;
    assert.ok(result?.stalled, 'the writer marked the reader as stalled');
    assert.ok((result?.sent ?? EVENTS) < EVENTS, 'the writer stopped before the end');
    assert.ok((result?.ms ?? 1e9) < 2000, `the writer waited ${result?.ms} ms for a reader that had stopped`);
  });

  test('an ended request ends the wait for a stalled reader at once', async () => {
    const controller = new AbortController();
    let waitedMs = -1;
    let served: () => void = () => {};
    const done = new Promise<void>((resolve) => (served = resolve));
    const writer: RequestListener = async (_req, res) => {
      res.writeHead(200, SSE_HEADERS);
      const sse = new SseWriter(res, writerOptions({ signal: controller.signal }));
      for (let i = 0; i < EVENTS && !res.writableNeedDrain; i++) {
        await sse.send({ i, pad: PAD });
        await nextTurn();
      }
      const started = performance.now();
      setTimeout(() => controller.abort(), 20);
      await sse.send({ last: true }); // waits for a drain that never comes, until the abort
      waitedMs = performance.now() - started;
      res.destroy();
      served();
    };
    await withServer(writer, async (port) => {
      const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' });
      req.on('error', () => {});
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.on('error', () => {});
      res.pause();
      await done;
      req.destroy();
    });
    assert.ok(waitedMs >= 0 && waitedMs < 1000, `waited ${waitedMs} ms after the request ended`);
  });

  test('1,000 chunks to a slow reader leave no listener or timer behind and raise no warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    let listeners: Record<string, number> = {};
    const writer: RequestListener = async (_req, res) => {
      res.writeHead(200, SSE_HEADERS);
      const sse = new SseWriter(res, writerOptions());
      const before = { drain: res.listenerCount('drain'), close: res.listenerCount('close'), error: res.listenerCount('error') };
      for (let i = 0; i < 1000; i++) {
        await sse.send({ i, pad: PAD.repeat(16) });
        await nextTurn();
      }
      listeners = {
        drain: res.listenerCount('drain') - before.drain,
        close: res.listenerCount('close') - before.close,
        error: res.listenerCount('error') - before.error,
      };
      sse.done();
    };
    try {
      await withServer(writer, async (port) => {
        const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' });
        req.end();
        const [res] = (await once(req, 'response')) as [IncomingMessage];
        let bytes = 0;
        // A slow reader: a little at a time, with pauses, so the writer waits for drain often.
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        await once(res, 'end');
        assert.ok(bytes > 1000 * 16_000);
      });
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(listeners, { drain: 0, close: 0, error: 0 });
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
  });
});
