// Every way an upstream can fail, over HTTP through the gateway against the local mock upstream,
// with a funded sk_live_ key: what the client gets (a status and error type, or for a fault after
// output an error event in the stream) and what is billed (nothing for a failure before any
// output, the prompt and what was produced for one after it), the hold closed at once.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { costMicros } from '../src/billing/pricing.ts';
import { countPromptTokens, countText } from '../src/lib/tokens.ts';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';
import { hugeAnswer, type MockUpstream, startMockUpstream, WORDS, WORDS_BEFORE_FAULT } from './support/mock-upstream.ts';

const TIMEOUT_MS = 400;
const FULL_TEXT = WORDS.join('');
/** What a stream has sent on when a mid-answer fault strikes. */
const BEFORE_FAULT = WORDS.slice(0, WORDS_BEFORE_FAULT).join('');

type ErrorBody = { error: { message: string; type: string; code: string | null } };
type Generation = {
  status: string;
  http_status: number;
  error_code: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; cost_micros: number };
};

const ask = (content: string) => [{ role: 'user' as const, content }];

// What this file tests is the HTTP and streaming layer, not storage (the ledger's operations are
// the same code on both databases, and ledger.test.ts and concurrency.test.ts run them on both): SQLite.
for (const kind of ['sqlite'] as const) {
  describe(`upstream faults behind the gateway (${kind})`, () => {
    let h: Harness;
    let mock: MockUpstream;
    let account: { id: string };
    let key: string;
    let client: OpenAI;
    const model = testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1' });

    before(async () => {
      mock = await startMockUpstream();
      hugeAnswer(); // made before the clock of any request starts
      h = await startHarness(kind, {
        models: [{ ...model, upstream_url: mock.url }],
        env: { BIZORA_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS) },
      });
      account = await h.newAccount({ cents: 10_000 });
      ({ key } = await h.newKey(account.id));
      client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
    });
    after(async () => {
      await h.close();
      await mock.close();
    });

    const post = (content: string, stream = false) =>
      fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', messages: ask(content), ...(stream ? { stream: true } : {}) }),
      });

    /** The events of an SSE answer, and whether it ended with [DONE]. */
    async function events(res: Response): Promise<{ data: Array<Record<string, unknown>>; done: boolean }> {
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const data: Array<Record<string, unknown>> = [];
      let done = false;
      for (const frame of (await res.text()).split('\n\n')) {
        if (!frame.startsWith('data: ')) continue;
        const payload = frame.slice('data: '.length);
        if (payload === '[DONE]') done = true;
        else data.push(JSON.parse(payload) as Record<string, unknown>);
      }
      return { data, done };
    }

    const textOf = (data: Array<Record<string, unknown>>) =>
      data.map((e) => (e.choices as Array<{ delta?: { content?: string } }> | undefined)?.[0]?.delta?.content ?? '').join('');

    async function generation(requestId: string): Promise<Generation> {
      const res = await fetch(`${h.baseURL}/generation?id=${requestId}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.status, 200);
      return (await res.json()) as Generation;
    }

    /**
     * Runs one request and checks its bill: the balance moved by exactly what /v1/generation says
     * was charged, which is `expected` (0 for nothing), nothing is held any more and the hold is
     * closed, all as soon as the answer is in.
     */
    /** The bill of one finished request: what /v1/generation says was charged, and its hold closed. */
    async function checkBill(requestId: string, expected: { micros: number; status: string }): Promise<Generation> {
      const hold = await h.deps.db.selectFrom('holds').select('status').where('request_id', '=', requestId).executeTakeFirstOrThrow();
      assert.equal(hold.status, expected.micros > 0 ? 'settled' : 'released');
      const g = await generation(requestId);
      assert.equal(g.status, expected.status);
      assert.equal(g.usage.cost_micros, expected.micros);
      return g;
    }

    /**
     * Runs one request and checks its bill: the balance moved by exactly what /v1/generation says
     * was charged, which is `expected` (0 for nothing), nothing is held any more and the hold is
     * closed, all as soon as the answer is in.
     */
    async function billed<T>(run: () => Promise<{ requestId: string; value: T }>, expected: { micros: number; status: string }) {
      const before = await h.balanceMicros(account.id);
      const { requestId, value } = await run();
      const after = await h.balanceMicros(account.id);
      assert.equal(after.held, 0, 'nothing held once the answer is in');
      assert.equal(before.balance - after.balance, expected.micros);
      return { value, generation: await checkBill(requestId, expected) };
    }

    const nothing = (status = 'failed') => ({ micros: 0, status });
    const promptAndProduced = (content: string, produced: string, status = 'failed') => ({
      micros: costMicros(model.price, countPromptTokens({ messages: ask(content) }), countText(produced)),
      status,
    });

    /** A request answered with an error status: its type, and its requestId for the bill. */
    async function failsWith(content: string, stream: boolean, status: number, type = 'upstream_error') {
      const res = await post(content, stream);
      assert.equal(res.status, status);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.type, type);
      assert.doesNotMatch(JSON.stringify(body), /\n\s+at |\/src\/|\.ts\b/, 'no stack trace or file path');
      return { requestId: res.headers.get('x-request-id') as string, value: { body, headers: res.headers } };
    }

    /** A stream that starts, then ends with one error event instead of [DONE]. */
    async function streamFails(content: string) {
      const res = await post(content, true);
      const { data, done } = await events(res);
      assert.equal(done, false, 'no [DONE] after an error');
      const last = data.at(-1) as ErrorBody;
      assert.ok(last.error, 'the stream ends with an error event');
      return { requestId: res.headers.get('x-request-id') as string, value: { text: textOf(data.slice(0, -1)), error: last.error } };
    }

    // After every fault: the books balance and no hold is left open.
    afterEach(() => assertBooksBalance(h));

    test('an upstream 500 is a 502 upstream_error, nothing billed', async () => {
      for (const stream of [false, true]) await billed(() => failsWith('mock:error:500', stream, 502), nothing());
    });

    test("an upstream 429 is a 429 rate_limit_error with the upstream's Retry-After (the SDK's RateLimitError), nothing billed", async () => {
      await billed(async () => {
        const err = await client.chat.completions.create({ model: 'bizora', messages: ask('mock:error:429') }).catch((e: unknown) => e);
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal(err.status, 429);
        assert.equal(err.headers?.get('retry-after'), '7');
        assert.equal((err.error as ErrorBody['error']).type, 'rate_limit_error');
        return { requestId: err.requestID as string, value: err };
      }, nothing());
      const streamed = await billed(() => failsWith('mock:error:429', true, 429, 'rate_limit_error'), nothing());
      assert.equal(streamed.value.headers.get('retry-after'), '7');
    });

    test('an error answer of any size is read only in part and is a 502', async () => {
      await billed(() => failsWith('mock:huge-error', false, 502), nothing());
    });

    test('a connection reset before the first byte is a 502, nothing billed', async () => {
      for (const stream of [false, true]) await billed(() => failsWith('mock:reset', stream, 502), nothing());
    });

    test('a connection reset after the headers, before any output, is a 502 status, nothing billed', async () => {
      for (const stream of [false, true]) await billed(() => failsWith('mock:reset-headers', stream, 502), nothing());
      await billed(() => failsWith('mock:cut mock:first', true, 502), nothing());
    });

    test('a connection reset half-way through a JSON answer is a 502, nothing billed', async () => {
      await billed(() => failsWith('mock:cut', false, 502), nothing());
    });

    test('a connection reset mid-stream ends the stream with an error event; the prompt and the words sent are billed', async () => {
      const { value } = await billed(() => streamFails('mock:cut'), promptAndProduced('mock:cut', BEFORE_FAULT));
      assert.equal(value.text, BEFORE_FAULT);
      assert.equal(value.error.type, 'upstream_error');
    });

    test('a JSON answer that is not JSON is a 502, nothing billed', async () => {
      await billed(() => failsWith('mock:malformed', false, 502), nothing());
    });

    test('malformed SSE before any output is a 502 status; after output an error event billing the prompt and the words sent', async () => {
      for (const fault of ['mock:malformed', 'mock:non-object']) {
        await billed(() => failsWith(`${fault} mock:first`, true, 502), nothing());
        const { value } = await billed(() => streamFails(fault), promptAndProduced(fault, BEFORE_FAULT));
        assert.equal(value.text, BEFORE_FAULT);
        assert.equal(value.error.type, 'upstream_error');
        assert.match(value.error.message, /malformed/);
      }
    });

    test('an error event inside the stream reaches the SDK as an APIError; the prompt and the words sent are billed', async () => {
      const content = 'mock:error-event';
      const { value } = await billed(
        async () => {
          const { data: stream, response } = await client.chat.completions
            .create({ model: 'bizora', messages: ask(content), stream: true })
            .withResponse();
          let text = '';
          const err = await (async () => {
            for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
          })().catch((e: unknown) => e);
          assert.ok(err instanceof OpenAI.APIError, String(err));
          assert.match(err.message, /mock upstream overloaded/);
          return { requestId: response.headers.get('x-request-id') as string, value: text };
        },
        promptAndProduced(content, BEFORE_FAULT),
      );
      assert.equal(value, BEFORE_FAULT);
    });

    test("an error event before any output is a 502 status with the upstream's message, nothing billed", async () => {
      const { value } = await billed(() => failsWith('mock:error-event mock:first', true, 502), nothing());
      assert.match(value.body.error.message, /mock upstream overloaded/);
    });

    test("a 200 whose body is an error is a 502 with the upstream's message, nothing billed", async () => {
      for (const stream of [false, true]) {
        const { value } = await billed(() => failsWith('mock:error-200', stream, 502), nothing());
        assert.match(value.body.error.message, /mock upstream is confused/);
      }
    });

    test('an upstream answering {"choices":[null]} is a 502, nothing billed, the hold closed at once', async () => {
      for (const content of ['mock:null-choice', 'mock:null-choice mock:json-stream']) {
        await billed(() => failsWith(content, content.includes('stream'), 502), nothing());
      }
    });

    test('null choices inside a stream are skipped and the answer completes, billed at its usage', async () => {
      const { value } = await billed(
        async () => {
          const res = await post('mock:null-choice', true);
          return { requestId: res.headers.get('x-request-id') as string, value: await events(res) };
        },
        { micros: costMicros(model.price, mock.promptTokens, WORDS.length), status: 'succeeded' },
      );
      assert.equal(value.done, true);
      assert.equal(textOf(value.data), FULL_TEXT);
    });

    test('a JSON answer to a stream request is streamed as one chunk and billed in full at its usage', async () => {
      const { value, generation: g } = await billed(
        async () => {
          const res = await post('mock:json-stream', true);
          return { requestId: res.headers.get('x-request-id') as string, value: await events(res) };
        },
        { micros: costMicros(model.price, mock.promptTokens, WORDS.length), status: 'succeeded' },
      );
      assert.equal(value.done, true);
      assert.equal(textOf(value.data), FULL_TEXT);
      assert.equal(
        value.data.some((e) => 'error' in e),
        false,
      );
      assert.deepEqual([g.usage.prompt_tokens, g.usage.completion_tokens], [mock.promptTokens, WORDS.length]);
    });

    test('an SSE answer to a JSON request is a 502, nothing billed', async () => {
      await billed(() => failsWith('mock:sse-json', false, 502), nothing());
    });

    test('an upstream that stalls before answering past BIZORA_UPSTREAM_TIMEOUT_MS is a 504, nothing billed', async () => {
      // The four stalls run side by side: each waits out the timeout.
      const cases = [
        ['mock:stall', false],
        ['mock:stall', true],
        ['mock:stall-mid', false],
        ['mock:stall-mid mock:first', true],
      ] as const;
      const before = await h.balanceMicros(account.id);
      const results = await Promise.all(
        cases.map(async ([content, stream]) => {
          const started = Date.now();
          const { requestId } = await failsWith(content, stream, 504);
          return { content, requestId, took: Date.now() - started };
        }),
      );
      assert.deepEqual(await h.balanceMicros(account.id), { ...before, held: 0 });
      for (const { content, requestId, took } of results) {
        assert.ok(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 1000, `${content}: ${took} ms`);
        await checkBill(requestId, nothing());
      }
    });

    test('a stream that stalls mid-answer past the timeout ends with an upstream_timeout error event; the prompt and the words sent are billed', async () => {
      const started = Date.now();
      const { value } = await billed(() => streamFails('mock:stall-mid'), promptAndProduced('mock:stall-mid', BEFORE_FAULT));
      assert.ok(Date.now() - started < TIMEOUT_MS + 1000);
      assert.equal(value.text, BEFORE_FAULT);
      assert.equal(value.error.code, 'upstream_timeout');
      assert.equal(value.error.type, 'upstream_error');
    });

    test('an answer without usage is billed by our own count', async () => {
      for (const stream of [false, true]) {
        await billed(
          async () => {
            const res = await post('mock:no-usage', stream);
            assert.equal(res.status, 200);
            const text = stream
              ? textOf((await events(res)).data)
              : ((await res.json()) as OpenAI.ChatCompletion).choices[0]?.message.content;
            assert.equal(text, FULL_TEXT);
            return { requestId: res.headers.get('x-request-id') as string, value: null };
          },
          promptAndProduced('mock:no-usage', FULL_TEXT, 'succeeded'),
        );
      }
    });

    test('usage that is negative, fractional, huge or not a number is ignored and the answer billed by our own count', async () => {
      for (const bad of ['negative', 'fractional', 'huge', 'string']) {
        for (const stream of [false, true]) {
          const content = `mock:usage:${bad}`;
          const expected = promptAndProduced(content, FULL_TEXT, 'succeeded');
          const { value, generation: g } = await billed(async () => {
            const res = await fetch(`${h.baseURL}/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
              body: JSON.stringify({
                model: 'bizora',
                messages: ask(content),
                stream,
                stream_options: stream ? { include_usage: true } : null,
              }),
            });
            assert.equal(res.status, 200);
            const usage = stream ? (await events(res)).data.find((e) => e.usage)?.usage : ((await res.json()) as { usage: unknown }).usage;
            return { requestId: res.headers.get('x-request-id') as string, value: usage as OpenAI.CompletionUsage };
          }, expected);
          const ours = [countPromptTokens({ messages: ask(content) }), countText(FULL_TEXT)];
          assert.deepEqual([value.prompt_tokens, value.completion_tokens], ours, `${bad}, stream ${stream}: the client sees our count`);
          assert.deepEqual([g.usage.prompt_tokens, g.usage.completion_tokens], ours, `${bad}, stream ${stream}: our count is stored`);
        }
      }
    });

    test('a JSON answer larger than 16 MiB is a 502, nothing billed', async () => {
      await billed(() => failsWith('mock:huge-answer', false, 502), nothing());
    });

    test('a stream event larger than 1 MiB ends the stream with an error event; the prompt and the words sent are billed', async () => {
      const { value } = await billed(() => streamFails('mock:huge-event'), promptAndProduced('mock:huge-event', BEFORE_FAULT));
      assert.equal(value.text, BEFORE_FAULT);
      assert.equal(value.error.type, 'upstream_error');
      await billed(() => failsWith('mock:huge-event mock:first', true, 502), nothing());
    });
  });
}
