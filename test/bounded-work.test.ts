// Work per byte of a request is bounded: a prompt of one 7 MiB "word" or of 7 MiB of mixed text
// is answered within seconds, and the server goes on answering everybody else meanwhile.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { countTokens as libraryCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countPromptTokensWithin, countText, segments } from '../src/lib/tokens.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';

const MiB = 1024 * 1024;
const WORDS = 'The quick brown fox jumps over the lazy dog, 12345 times! ¿Qué? 日本語のテキスト 😀.\n\tIndented  line ';
/** Mixed text whose JSON string takes about `bytes` bytes. */
const mixedText = (bytes: number) => WORDS.repeat(Math.floor(bytes / Buffer.byteLength(JSON.stringify(WORDS))));

describe('token counting is linear and bounded', () => {
  test('segments always join back to the text, and ordinary text is counted exactly', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (s) => [...segments(s)].join('') === s),
      { numRuns: 300 },
    );
    const text = mixedText(300_000);
    assert.equal(countText(text), libraryCount(text));
  });

  test('one long "word", punctuation, spaces or emoji cost milliseconds, not seconds, and are never under-counted by much', () => {
    for (const s of ['x'.repeat(200_000), '!'.repeat(200_000), ' '.repeat(200_000), '😀'.repeat(50_000), '\t \t'.repeat(50_000)]) {
      const started = performance.now();
      const n = countText(s);
      const ms = performance.now() - started;
      assert.ok(ms < 500, `${JSON.stringify(s.slice(0, 4))}…: ${ms.toFixed(0)} ms`);
      // The exact count of a sample (the library is quadratic, so only a small one) scaled up:
      // a hard cut adds at most a token per cut, never removes one.
      const sample = s.slice(0, 4096);
      const exactPerChar = libraryCount(sample) / sample.length;
      assert.ok(n >= Math.floor(exactPerChar * s.length * 0.99), `${n} tokens for ${s.length} chars`);
      assert.ok(n <= Math.ceil(exactPerChar * s.length) + Math.ceil(s.length / 128) + 1, `${n} tokens for ${s.length} chars`);
    }
  });

  test('a count with a limit stops soon after the limit and gives the event loop back while it runs', async () => {
    const text = mixedText(7 * MiB);
    const messages = [{ role: 'user', content: text }];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    try {
      const started = performance.now();
      const n = await countPromptTokensWithin({ messages }, 128_000);
      const ms = performance.now() - started;
      assert.ok(n > 128_000 && n < 130_000, `${n}`);
      assert.ok(ms < 1000, `${ms} ms`);
      ticks = 0;
      const full = await countPromptTokensWithin({ messages }, Number.POSITIVE_INFINITY);
      assert.ok(full > 1_000_000, `${full}`);
      // Counted in slices of a few milliseconds: timers ran many times while it counted.
      assert.ok(ticks >= 20, `only ${ticks} timer ticks while counting ${full} tokens`);
    } finally {
      clearInterval(ticker);
    }
  });
});

describe('huge prompts while another client polls /healthz (sqlite)', () => {
  let h: Harness;
  let testKey: string;
  let liveKey: string;
  before(async () => {
    h = await startHarness('sqlite', {
      models: [
        testModel({ context_window: 128_000 }),
        // A model whose context holds all of a 7 MiB prompt: the whole prompt is counted.
        testModel({ id: 'bizora-long', context_window: 4_000_000 }),
      ],
    });
    const account = await h.newAccount({ cents: 1 });
    ({ key: testKey } = await h.newKey(account.id, { mode: 'test' }));
    ({ key: liveKey } = await h.newKey(account.id));
  });
  after(() => h.close());

  test('each gets an OpenAI-shaped answer within seconds, and every poll answers within 100 ms', async () => {
    const word = 'x'.repeat(7 * MiB);
    const mixed = mixedText(7 * MiB);
    const cases = [
      { name: 'one 7 MiB word', key: testKey, model: 'bizora', content: word, status: 400, code: 'context_length_exceeded' },
      { name: '7 MiB of mixed text', key: testKey, model: 'bizora', content: mixed, status: 400, code: 'context_length_exceeded' },
      { name: '7 MiB word, long-context model, 1 cent', key: liveKey, model: 'bizora-long', content: word, status: 402 },
      { name: '7 MiB mixed, long-context model, sandbox', key: testKey, model: 'bizora-long', content: mixed, status: 200 },
      // Sent as bytes: encoding a 7 MiB string in fetch would hold this process's event loop, which
      // the server shares here.
    ].map((c) => ({
      ...c,
      body: Buffer.from(JSON.stringify({ model: c.model, max_tokens: 16, messages: [{ role: 'user', content: c.content }] })),
    }));

    // The other client is a thread of its own, so that only the server's time is measured, not
    // this thread's own work of sending 7 MiB bodies.
    const poller = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      const polls = [];
      let polling = true;
      parentPort.once('message', () => { polling = false; });
      (async () => {
        // The first request loads fetch and opens the connection: not a measure of the server.
        await (await fetch(workerData.url)).text();
        parentPort.postMessage('ready');
        while (polling) {
          const started = performance.now();
          const res = await fetch(workerData.url);
          await res.text();
          if (res.status !== 200) throw new Error('/healthz answered ' + res.status);
          polls.push(performance.now() - started);
          await new Promise((r) => setTimeout(r, 10));
        }
        parentPort.postMessage(polls);
      })();`,
      { eval: true, workerData: { url: `${h.url}/healthz` } },
    );
    const polled = new Promise<number[]>((resolve, reject) => {
      poller.on('message', (m: 'ready' | number[]) => m !== 'ready' && resolve(m));
      poller.once('error', reject);
    });
    await new Promise((resolve) => poller.once('message', resolve));

    const answered: string[] = [];
    try {
      for (const c of cases) {
        const started = performance.now();
        const res = await fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json' },
          body: c.body,
        });
        const text = await res.text();
        const ms = performance.now() - started;
        assert.equal(res.status, c.status, `${c.name}: ${text.slice(0, 300)}`);
        const body = JSON.parse(text) as { error?: { type: string; code?: string }; usage?: { prompt_tokens: number } };
        if (c.status === 200) assert.ok((body.usage?.prompt_tokens ?? 0) > 1_000_000, c.name);
        else assert.ok(body.error?.type, c.name);
        if (c.code) assert.equal(body.error?.code, c.code, c.name);
        assert.ok(ms < 5000, `${c.name}: answered after ${ms.toFixed(0)} ms`);
        answered.push(`${c.name}: ${res.status} in ${ms.toFixed(0)} ms`);
      }
    } finally {
      poller.postMessage('stop');
    }
    const polls = await polled;
    await poller.terminate();
    const worst = Math.max(...polls);
    const median = [...polls].sort((a, b) => a - b)[Math.floor(polls.length / 2)] ?? 0;
    console.log(`${answered.join('; ')}; ${polls.length} health polls, median ${median.toFixed(1)} ms, slowest ${worst.toFixed(0)} ms`);
    assert.ok(polls.length > 10, `${polls.length} polls`);
    assert.ok(worst < 100, `the slowest of ${polls.length} health polls took ${worst.toFixed(0)} ms`);
    assert.ok((await h.verify()).ok);
  });
});
