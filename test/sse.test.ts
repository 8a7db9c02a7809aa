import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, request } from 'node:http';
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

describe('server-sent events out', () => {
  test('a reader that stops reading stops the writer; nothing is lost or reordered, and [DONE] ends it', async () => {
    let sent = 0;
    let maxQueued = 0;
    const writer: RequestListener = async (_req, res) => {
      res.writeHead(200, SSE_HEADERS);
      const sse = new SseWriter(res);
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
      await sleep(300);
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
      const sse = new SseWriter(res);
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
});
