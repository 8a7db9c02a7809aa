// POST /v1/responses through the real openai SDK (responses.create, its stream and its parse
// helper): a text answer, the documented event sequence, a function tool round trip, structured
// output, the bill (held first, /v1/generation by the response id), errors and a cut stream;
// against the simulator and against an upstream that speaks chat completions only. HTTP only:
// SQLite.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { MAGIC } from '../src/backends/simulator.ts';
import { costMicros } from '../src/billing/pricing.ts';
import { loadConfig } from '../src/config.ts';
import { createKey } from '../src/keys/key-store.ts';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream, TOOL_ARGUMENTS, WORDS } from './support/mock-upstream.ts';

const weather: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Get the current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

type Generation = { id: string; status: string; usage: { prompt_tokens: number; completion_tokens: number; cost_cents: number } };

describe('the Responses API over the simulator', () => {
  let h: Harness;
  let client: OpenAI;
  let key: string;
  let accountId: string;
  const model = testModel();

  before(async () => {
    h = await startHarness('sqlite', { models: [model] });
    accountId = (await h.newAccount({ cents: 1_000 })).id;
    ({ key } = await h.newKey(accountId));
    client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
  });
  after(() => h.close());
  afterEach(() => assertBooksBalance(h));

  const generation = async (id: string) =>
    (await (await fetch(`${h.baseURL}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Generation;

  test('a text answer: a Response with one message, usage with our cost, billed and found by its id', async () => {
    const before = await h.balanceMicros(accountId);
    const r = await client.responses.create({ model: 'bizora', instructions: 'Be brief.', input: 'Say hello.', metadata: { run: '1' } });
    assert.match(r.id, /^resp_/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.match(r.output_text, /You said: "Say hello\."/);
    assert.deepEqual(r.metadata, { run: '1' });
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0]?.type, 'message');
    const usage = r.usage as OpenAI.Responses.ResponseUsage & { cost_cents: number };
    const cost = costMicros(model.price, usage.input_tokens, usage.output_tokens);
    assert.equal(usage.cost_cents, cost / 10_000);
    assert.equal(before.balance - (await h.balanceMicros(accountId)).balance, cost);
    const g = await generation(r.id);
    assert.deepEqual([g.status, g.usage.prompt_tokens, g.usage.completion_tokens], ['succeeded', usage.input_tokens, usage.output_tokens]);
  });

  test('streamed: the documented event sequence, numbered, ending in response.completed with usage; the SDK’s helper assembles it', async () => {
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of await client.responses.create({ model: 'bizora', input: 'Hello there.', stream: true })) events.push(e);
    const types = events.map((e) => e.type);
    const distinct = types.filter((t, i) => t !== types[i - 1]);
    assert.deepEqual(distinct, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    const done = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    assert.equal(
      done.response.output[0]?.type === 'message' && done.response.output[0].content[0]?.type === 'output_text'
        ? done.response.output[0].content[0].text
        : '',
      text,
    );
    assert.ok((done.response.usage as unknown as { cost_cents: number }).cost_cents > 0);

    const final = await client.responses.stream({ model: 'bizora', input: 'Hello there.' }).finalResponse();
    assert.equal(final.output_text, text);
  });

  test('a function tool round trip, JSON and streamed: a function_call item, its output sent back, then words', async () => {
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const first = await client.responses.create({ model: 'bizora', input, tools: [weather] });
    const call = first.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
    assert.ok(call);
    assert.deepEqual([call.name, JSON.parse(call.arguments)], ['get_weather', { city: 'Paris' }]);
    const second = await client.responses.create({
      model: 'bizora',
      tools: [weather],
      input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temperature": 21}' }],
    });
    assert.match(second.output_text, /temperature.*21/);

    const stream = await client.responses.create({ model: 'bizora', input, tools: [weather], stream: true });
    let args = '';
    let pieces = 0;
    let doneArgs: string | undefined;
    for await (const e of stream) {
      if (e.type === 'response.function_call_arguments.delta') {
        args += e.delta;
        pieces++;
      }
      if (e.type === 'response.function_call_arguments.done') doneArgs = e.arguments;
    }
    assert.ok(pieces > 1);
    assert.equal(args, call.arguments);
    assert.equal(doneArgs, call.arguments);
  });

  test('text.format json_schema: responses.parse with a zod schema gets a parsed object', async () => {
    const Person = z.object({ name: z.string(), age: z.number().int(), city: z.string() });
    const r = await client.responses.parse({
      model: 'bizora',
      input: 'Ada lives in London.',
      text: { format: zodTextFormat(Person, 'person') },
    });
    assert.ok(r.output_parsed);
    assert.deepEqual(Person.parse(r.output_parsed), r.output_parsed);
  });

  test('max_output_tokens: status incomplete; too large a limit names max_output_tokens', async () => {
    const r = await client.responses.create({ model: 'bizora', input: 'Tell me a long story.', max_output_tokens: 3 });
    assert.deepEqual([r.status, r.incomplete_details?.reason, r.usage?.output_tokens], ['incomplete', 'max_output_tokens', 3]);
    await assert.rejects(client.responses.create({ model: 'bizora', input: 'x', max_output_tokens: 10_000 }), {
      status: 400,
      param: 'max_output_tokens',
    });
  });

  test('what is not supported is a 400 that says so: store, previous_response_id, item references, other tools', async () => {
    const refused = async (params: Record<string, unknown>, param: string, message: RegExp) => {
      const res = await fetch(`${h.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', input: 'x', ...params }),
      });
      assert.equal(res.status, 400);
      const { error } = (await res.json()) as { error: { param: string; message: string; type: string } };
      assert.deepEqual([error.type, error.param], ['invalid_request_error', param]);
      assert.match(error.message, message);
    };
    await refused({ store: true }, 'store', /not.*stored|does not do/);
    await refused({ previous_response_id: 'resp_x' }, 'previous_response_id', /input items/);
    await refused({ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type', /item_reference/);
    await refused({ tools: [{ type: 'web_search' }] }, 'tools[0].type', /function tools/);
  });

  test('a stream cut off by the backend ends in an error event the SDK raises, billed for what was produced', async () => {
    const before = await h.balanceMicros(accountId);
    const stream = await client.responses.create({ model: 'bizora', input: `Tell me more ${MAGIC.cutoff}`, stream: true });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of stream) seen.push(e.type);
      })(),
      (err: unknown) => err instanceof OpenAI.APIError,
    );
    assert.ok(seen.includes('response.output_text.delta'));
    assert.ok(before.balance > (await h.balanceMicros(accountId)).balance, 'the prompt and the words sent are billed');
  });

  test('an account that cannot afford the worst case gets the 402 before the model is asked', async () => {
    const broke = await h.newAccount();
    const poor = new OpenAI({ apiKey: (await h.newKey(broke.id)).key, baseURL: h.baseURL, maxRetries: 0 });
    await assert.rejects(poor.responses.create({ model: 'bizora', input: 'x' }), { status: 402 });
  });
});

describe('the Responses API over an upstream that speaks chat completions only', () => {
  let h: Harness;
  let mock: MockUpstream;
  let client: OpenAI;
  const model = testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1' });
  before(async () => {
    mock = await startMockUpstream();
    h = await startHarness('sqlite', { models: [{ ...model, upstream_url: mock.url }] });
    const account = await h.newAccount({ cents: 1_000 });
    client = new OpenAI({ apiKey: (await h.newKey(account.id)).key, baseURL: h.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });
  afterEach(() => assertBooksBalance(h));

  test('the request goes upstream as a chat completion; the answer comes back as a Response, JSON and streamed', async () => {
    const r = await client.responses.create({
      model: 'bizora',
      instructions: 'Be brief.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello' }] }],
      max_output_tokens: 50,
      text: { format: { type: 'json_object' } },
      tools: [weather],
      tool_choice: { type: 'function', name: 'get_weather' },
    });
    const sent = mock.requests.at(-1)?.body as Record<string, unknown>;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
    ]);
    assert.deepEqual([sent.model, sent.max_completion_tokens, sent.response_format], ['mock-model-1', 50, { type: 'json_object' }]);
    assert.deepEqual(sent.tool_choice, { type: 'function', function: { name: 'get_weather' } });
    assert.equal((sent.tools as Array<{ function: { name: string } }>)[0]?.function.name, 'get_weather');
    // The upstream called the tool offered: the call comes back as a function_call item.
    assert.deepEqual(
      r.output.map((o) => (o.type === 'function_call' ? [o.type, o.name, o.arguments, o.call_id] : [o.type])),
      [['function_call', 'get_weather', TOOL_ARGUMENTS, 'call_mock1']],
    );
    assert.deepEqual([r.usage?.input_tokens, r.usage?.output_tokens], [mock.promptTokens, 5]);

    let text = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const e of await client.responses.create({ model: 'bizora', input: 'hello', stream: true })) {
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') completed = e.response;
    }
    assert.equal(mock.requests.at(-1)?.body.stream, true);
    assert.equal(text, WORDS.join(''));
    assert.equal(completed?.usage?.output_tokens, WORDS.length);
  });
});

describe('the Responses API over an upstream that answers badly', () => {
  test('tool_calls of [null] are dropped: the answer is its text, billed, never a 500 after the charge', async () => {
    const mock = await startMockUpstream();
    const h = await startHarness('sqlite', { models: [testModel({ backend: 'openai-compatible', upstream_url: mock.url })] });
    try {
      const account = await h.newAccount({ cents: 1_000 });
      const client = new OpenAI({ apiKey: (await h.newKey(account.id)).key, baseURL: h.baseURL, maxRetries: 0 });
      const r = await client.responses.create({ model: 'bizora', input: 'mock:null-tool-call' });
      assert.equal(r.output_text, WORDS.join(''));
      assert.ok((r.usage as unknown as { cost_cents: number }).cost_cents > 0);
      await assertBooksBalance(h);
    } finally {
      await h.close();
      await mock.close();
    }
  });
});

describe('the Responses API passed through to an upstream that serves it (responses_api)', () => {
  let h: Harness;
  let mock: MockUpstream;
  let client: OpenAI;
  let key: string;
  let accountId: string;
  const model = testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1', responses_api: true });
  before(async () => {
    mock = await startMockUpstream();
    h = await startHarness('sqlite', { models: [{ ...model, upstream_url: mock.url }] });
    accountId = (await h.newAccount({ cents: 1_000 })).id;
    ({ key } = await h.newKey(accountId));
    client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });
  afterEach(() => assertBooksBalance(h));

  const generation = async (id: string) =>
    (await (await fetch(`${h.baseURL}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Generation;
  const sent = () => mock.requests.at(-1)?.body as Record<string, unknown>;
  const upstreamCost = (output: number) => costMicros(model.price, mock.promptTokens, output);

  test('JSON: the request goes as sent (what only the Responses API has too), the Response comes back ours, billed at its usage', async () => {
    const before = await h.balanceMicros(accountId);
    const params = {
      model: 'bizora',
      input: [
        {
          role: 'user' as const,
          content: [
            { type: 'input_text' as const, text: 'Summarise this file.' },
            { type: 'input_file' as const, file_url: 'https://example.com/report.pdf' },
          ],
        },
      ],
      reasoning: { effort: 'low' as const },
      include: ['reasoning.encrypted_content' as const],
      metadata: { run: '2' },
    };
    const r = await client.responses.create(params);
    const { model: _, ...rest } = params;
    assert.deepEqual(sent(), { ...rest, model: 'mock-model-1', store: false, max_output_tokens: model.max_output_tokens });
    assert.deepEqual([r.id.startsWith('resp_') && r.id !== 'resp_upstream1', r.model, r.status], [true, 'bizora', 'completed']);
    assert.equal(r.output[0]?.id, 'msg_upstream1');
    assert.equal(r.output_text, WORDS.join(''));
    const usage = r.usage as OpenAI.Responses.ResponseUsage & { cost_cents: number };
    assert.deepEqual([usage.input_tokens, usage.output_tokens, usage.output_tokens_details.reasoning_tokens], [mock.promptTokens, 7, 2]);
    assert.equal(usage.cost_cents, upstreamCost(7) / 10_000);
    assert.equal(before.balance - (await h.balanceMicros(accountId)).balance, upstreamCost(7));
    const g = await generation(r.id);
    assert.deepEqual([g.status, g.usage.prompt_tokens, g.usage.completion_tokens], ['succeeded', mock.promptTokens, 7]);

    const short = await client.responses.create({ model: 'bizora', input: 'hello', max_output_tokens: 3 });
    assert.deepEqual([short.status, short.usage?.output_tokens, sent().max_output_tokens], ['incomplete', 3, 3]);
  });

  test("streamed: the upstream's events passed on in order, numbered, our id in them; response.completed carries our cost", async () => {
    const before = await h.balanceMicros(accountId);
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of await client.responses.create({ model: 'bizora', input: 'hello', stream: true })) events.push(e);
    assert.equal(sent().stream, true);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'response.created',
        'response.output_item.added',
        'response.content_part.added',
        ...WORDS.map(() => 'response.output_text.delta'),
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
    const done = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    assert.equal(done.response.id, created.response.id);
    assert.match(done.response.id, /^resp_/);
    assert.notEqual(done.response.id, 'resp_upstream1');
    assert.equal(done.response.model, 'bizora');
    assert.equal((done.response.usage as unknown as { cost_cents: number }).cost_cents, upstreamCost(7) / 10_000);
    assert.equal(before.balance - (await h.balanceMicros(accountId)).balance, upstreamCost(7));
    assert.equal((await generation(done.response.id)).status, 'succeeded');
  });

  test('a stream the upstream cuts off ends in an error event and response.failed, billed at the prompt plus what was produced', async () => {
    const before = await h.balanceMicros(accountId);
    const seen: OpenAI.Responses.ResponseStreamEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of await client.responses.create({ model: 'bizora', input: 'mock:cut', stream: true })) seen.push(e);
      })(),
      (err: unknown) => err instanceof OpenAI.APIError,
    );
    const text = seen.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    assert.equal(text, WORDS.slice(0, 3).join(''));
    const id = (seen[0] as OpenAI.Responses.ResponseCreatedEvent).response.id;
    const g = await generation(id);
    assert.deepEqual([g.status, g.usage.completion_tokens], ['failed', 3]);
    assert.equal(before.balance - (await h.balanceMicros(accountId)).balance, costMicros(model.price, g.usage.prompt_tokens, 3));
  });

  test("the upstream's failures: its 4xx passed on, response.failed mid-stream an error event; neither billed", async () => {
    const before = await h.balanceMicros(accountId);
    await assert.rejects(client.responses.create({ model: 'bizora', input: 'mock:error:400' }), {
      status: 400,
      param: 'input',
      message: /mock upstream says 400/,
    });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of await client.responses.create({ model: 'bizora', input: 'mock:failed', stream: true })) seen.push(e.type);
      })(),
      (err: unknown) => err instanceof OpenAI.APIError && /mock upstream failed/.test(err.message),
    );
    assert.deepEqual(seen, ['response.created']);
    assert.equal((await h.balanceMicros(accountId)).balance, before.balance);
  });

  test('what cannot be billed, or is the upstream account’s own, is a 400 and never goes upstream; the hold covers the whole context', async () => {
    const asked = mock.requests.length;
    const refused = async (params: Record<string, unknown>, param: string) => {
      const res = await fetch(`${h.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bizora', input: 'x', ...params }),
      });
      const { error } = (await res.json()) as { error: { param: string; type: string } };
      assert.deepEqual([res.status, error.type, error.param], [400, 'invalid_request_error', param]);
    };
    await refused({ tools: [{ type: 'web_search' }] }, 'tools[0].type');
    await refused({ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type');
    await refused({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-123' }] }] }, 'input[0].content[0].file_id');
    await refused({ conversation: 'conv_1' }, 'conversation');
    await refused({ service_tier: 'priority' }, 'service_tier');
    await refused({ background: true }, 'background');
    assert.equal(mock.requests.length, asked);
    // Five cents cover this prompt, but not the model's whole context window at its input price.
    const poor = await h.newAccount({ cents: 5 });
    const poorClient = new OpenAI({ apiKey: (await h.newKey(poor.id)).key, baseURL: h.baseURL, maxRetries: 0 });
    await assert.rejects(poorClient.responses.create({ model: 'bizora', input: 'hi' }), { status: 402 });
  });

  test('responses are not stored here either (store: true is a 400); an sk_test_ key is served by the simulator', async () => {
    const asked = mock.requests.length;
    await assert.rejects(client.responses.create({ model: 'bizora', input: 'x', store: true }), { status: 400, param: 'store' });
    const sandbox = new OpenAI({ apiKey: (await h.newKey(accountId, { mode: 'test' })).key, baseURL: h.baseURL, maxRetries: 0 });
    const r = await sandbox.responses.create({ model: 'bizora', input: 'Say hello.' });
    assert.match(r.output_text, /You said/);
    assert.equal(mock.requests.length, asked);
  });

  test("a key's tokens per minute count the request as counted, not the whole context its hold covers", async () => {
    const k = await createKey(h.deps.db, { accountId, name: 'tpm', mode: 'live', now: Date.now(), limits: { tpm: 5_000 } });
    const limited = new OpenAI({ apiKey: k.key, baseURL: h.baseURL, maxRetries: 0 });
    const r = await limited.responses.create({ model: 'bizora', input: 'hello', max_output_tokens: 100 });
    assert.equal(r.status, 'completed');
  });

  test('responses_api is refused at start-up for a model without an upstream to pass it to', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bizora-models-'));
    const file = join(dir, 'models.json');
    writeFileSync(file, JSON.stringify({ models: [{ id: 'sim', backend: 'simulator', responses_api: true, price: model.price }] }));
    try {
      assert.throws(() => loadConfig({ BIZORA_MODELS_FILE: file }), /model sim has responses_api/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
