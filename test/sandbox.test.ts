// The simulator as a sandbox (every sk_test_ key): tool calls, structured outputs, stop,
// logprobs and n, through the real openai SDK and its helpers, JSON and streamed, as a real
// upstream answers them. HTTP and the simulator only: SQLite.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import fc from 'fast-check';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { sampleJson } from '../src/backends/json-sample.ts';
import { type Harness, startHarness } from './support/harness.ts';

const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const timeTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The local time in a timezone',
    parameters: { type: 'object', properties: { timezone: { type: 'string' } }, required: ['timezone'] },
  },
};

const ask = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content }];

describe('the simulator as a sandbox (sk_test_ keys)', () => {
  let h: Harness;
  let client: OpenAI;

  before(async () => {
    h = await startHarness('sqlite');
    const account = await h.newAccount();
    const { key } = await h.newKey(account.id, { mode: 'test' });
    client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
  });
  after(() => h.close());

  test('tool_choice auto calls the tool the prompt mentions, with arguments valid for its schema; the tool’s answer gets words', async () => {
    const messages = ask('What is the weather in Paris today?');
    const first = await client.chat.completions.create({ model: 'bizora', messages, tools: [timeTool, weatherTool] });
    const choice = first.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice?.message.content, null);
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'celsius' });
    assert.match(call.id, /^call_/);
    assert.ok((first.usage?.completion_tokens ?? 0) > 0);

    const second = await client.chat.completions.create({
      model: 'bizora',
      tools: [timeTool, weatherTool],
      messages: [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }],
    });
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    assert.match(second.choices[0]?.message.content ?? '', /temperature.*21/);

    // Nothing in the prompt names a tool: auto answers in words.
    const plain = await client.chat.completions.create({ model: 'bizora', messages: ask('Tell me a story.'), tools: [weatherTool] });
    assert.equal(plain.choices[0]?.finish_reason, 'stop');
    assert.equal(plain.choices[0]?.message.tool_calls, undefined);
  });

  test('tool_choice required and a named tool always call; none never does', async () => {
    const messages = ask('Tell me a story.');
    const required = await client.chat.completions.create({
      model: 'bizora',
      messages,
      tools: [weatherTool, timeTool],
      tool_choice: 'required',
    });
    assert.equal(required.choices[0]?.message.tool_calls?.[0]?.type, 'function');
    const named = await client.chat.completions.create({
      model: 'bizora',
      messages,
      tools: [weatherTool, timeTool],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const call = named.choices[0]?.message.tool_calls?.[0];
    assert.equal(call?.type === 'function' && call.function.name, 'get_time');
    const none = await client.chat.completions.create({
      model: 'bizora',
      messages: ask('What is the weather in Oslo?'),
      tools: [weatherTool],
      tool_choice: 'none',
    });
    assert.equal(none.choices[0]?.message.tool_calls, undefined);
    assert.equal(none.choices[0]?.finish_reason, 'stop');
  });

  test('a streamed tool call arrives as argument deltas in pieces, which the SDK’s stream helper assembles', async () => {
    const params = { model: 'bizora', messages: ask('Weather in Lima, please.'), tools: [weatherTool] };
    const raw = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let pieces = 0;
    let args = '';
    let finish: string | null = null;
    for await (const chunk of raw) {
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
        if (tc.function?.arguments) {
          pieces++;
          args += tc.function.arguments;
        }
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(pieces > 2, `${pieces} argument pieces`);
    assert.equal(finish, 'tool_calls');
    const json = await client.chat.completions.create(params);
    const call = json.choices[0]?.message.tool_calls?.[0];
    assert.equal(args, call?.type === 'function' ? call.function.arguments : undefined, 'streamed and JSON answers agree');

    const helper = client.chat.completions.stream(params);
    const final = await helper.finalChatCompletion();
    const assembled = final.choices[0]?.message.tool_calls?.[0];
    assert.deepEqual(assembled?.type === 'function' && JSON.parse(assembled.function.arguments), { city: 'Lima', unit: 'celsius' });
  });

  test('chat.completions.parse with a zod schema gets a parsed object that validates; json_object answers are JSON', async () => {
    const Event = z.object({
      name: z.string(),
      date: z.string(),
      attendees: z.array(z.object({ name: z.string(), role: z.enum(['host', 'guest']) })),
      priority: z.number().int().min(1).max(5),
      confirmed: z.boolean(),
      notes: z.string().nullable(),
    });
    const parsed = await client.chat.completions.parse({
      model: 'bizora',
      messages: ask('Alice and Bob are going to a science fair on Friday.'),
      response_format: zodResponseFormat(Event, 'event'),
    });
    const event = parsed.choices[0]?.message.parsed;
    assert.ok(event, 'parsed');
    assert.deepEqual(Event.parse(event), event);
    assert.ok(event.attendees.length >= 1);

    const obj = await client.chat.completions.create({
      model: 'bizora',
      messages: ask('Answer in JSON.'),
      response_format: { type: 'json_object' },
    });
    assert.equal(typeof JSON.parse(obj.choices[0]?.message.content ?? ''), 'object');
  });

  test('stop ends the answer before the first stop sequence', async () => {
    const full = await client.chat.completions.create({ model: 'bizora', messages: ask('Hello.') });
    const cut = await client.chat.completions.create({ model: 'bizora', messages: ask('Hello.'), stop: ['simulator', 'never'] });
    const text = full.choices[0]?.message.content ?? '';
    assert.equal(cut.choices[0]?.message.content, text.slice(0, text.indexOf('simulator')));
    assert.equal(cut.choices[0]?.finish_reason, 'stop');
    assert.ok((cut.usage?.completion_tokens ?? 0) < (full.usage?.completion_tokens ?? 0));
  });

  test('logprobs: one entry per token, with top_logprobs alternatives, JSON and streamed', async () => {
    const r = await client.chat.completions.create({ model: 'bizora', messages: ask('Hi.'), logprobs: true, top_logprobs: 3 });
    const content = r.choices[0]?.logprobs?.content ?? [];
    assert.equal(content.length, r.usage?.completion_tokens);
    assert.equal(content.map((t) => t.token).join(''), r.choices[0]?.message.content);
    for (const t of content) {
      assert.ok(t.logprob < 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.equal(t.top_logprobs[0]?.token, t.token);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
    }
    const s = await client.chat.completions.create({ model: 'bizora', messages: ask('Hi.'), logprobs: true, stream: true });
    let streamed = 0;
    for await (const chunk of s) streamed += chunk.choices[0]?.logprobs?.content?.length ?? 0;
    assert.ok(streamed > 0);
    const none = await client.chat.completions.create({ model: 'bizora', messages: ask('Hi.') });
    assert.equal(none.choices[0]?.logprobs, null);
  });

  test('n choices: n different answers, usage their sum; streamed with each choice’s index', async () => {
    const one = await client.chat.completions.create({ model: 'bizora', messages: ask('Name a colour.') });
    const three = await client.chat.completions.create({ model: 'bizora', messages: ask('Name a colour.'), n: 3 });
    assert.deepEqual(
      three.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(three.choices[0]?.message.content, one.choices[0]?.message.content, 'the first is the answer of n = 1');
    assert.equal(three.usage?.prompt_tokens, one.usage?.prompt_tokens, 'the prompt counts once');
    assert.ok((three.usage?.completion_tokens ?? 0) > (one.usage?.completion_tokens ?? 0));
    const texts: Record<number, string> = {};
    for await (const chunk of await client.chat.completions.create({
      model: 'bizora',
      messages: ask('Name a colour.'),
      n: 3,
      stream: true,
    })) {
      for (const c of chunk.choices) texts[c.index] = (texts[c.index] ?? '') + (c.delta.content ?? '');
    }
    assert.deepEqual(
      Object.values(texts),
      three.choices.map((c) => c.message.content),
    );
  });

  test('the same request gets the same answer, tool calls included', async () => {
    const params = { model: 'bizora', messages: ask('What is the weather in Rome?'), tools: [weatherTool], n: 2 };
    const a = await client.chat.completions.create(params);
    const b = await client.chat.completions.create(params);
    assert.deepEqual(
      a.choices.map((c) => c.message),
      b.choices.map((c) => c.message),
    );
  });
});

describe('sampled JSON validates against its schema', () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (formats as unknown as { default: (a: Ajv2020) => void }).default(ajv);
  const source = { text: 'some text from the simulator', subject: 'Paris', hash: 7 };
  const schemas: Record<string, unknown> = {
    'zod with nested objects, enums, bounds, nullable and formats': z.toJSONSchema(
      z.object({
        id: z.uuid(),
        when: z.iso.datetime(),
        email: z.email(),
        tags: z.array(z.string().min(3).max(5)).min(2).max(4),
        score: z.number().gt(0).lt(1),
        count: z.number().int().multipleOf(5).min(7),
        mode: z.enum(['a', 'b']),
        kind: z.literal('x'),
        maybe: z.string().nullable(),
        either: z.union([z.number(), z.string()]),
        nested: z.object({ deep: z.object({ flag: z.boolean() }) }),
      }),
    ),
    '$defs and a recursive $ref': {
      type: 'object',
      properties: { root: { $ref: '#/$defs/node' } },
      required: ['root'],
      $defs: {
        node: {
          type: 'object',
          properties: { value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } },
          required: ['value', 'children'],
        },
      },
    },
    'type lists, allOf, prefixItems and const': {
      allOf: [
        { type: 'object', properties: { a: { type: ['string', 'null'] } }, required: ['a'] },
        { type: 'object', properties: { b: { type: 'array', prefixItems: [{ type: 'integer' }, { const: 'two' }], minItems: 2 } } },
      ],
    },
  };
  for (const [name, schema] of Object.entries(schemas)) {
    test(name, () => {
      const value = sampleJson(schema, source);
      assert.ok(ajv.validate(schema as object, value), `${JSON.stringify(value)}: ${ajv.errorsText()}`);
    });
  }

  test('any schema, however deep or large, is sampled with bounded work', () => {
    const schemaArb = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom({ type: 'string' }, { type: 'integer', minimum: 3 }, { type: 'boolean' }, { enum: [1, 'x'] }, { type: 'null' }),
        fc.record({ type: fc.constant('array'), items: tie('node'), minItems: fc.nat(3) }),
        fc.record({
          type: fc.constant('object'),
          properties: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), tie('node'), { maxKeys: 4 }),
        }),
        fc.record({ anyOf: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
      ),
    })).node;
    fc.assert(
      fc.property(schemaArb, (schema) => {
        const value = sampleJson(schema, source);
        assert.ok(ajv.validate(schema as object, value), `${JSON.stringify(schema)} -> ${JSON.stringify(value)}: ${ajv.errorsText()}`);
      }),
      { numRuns: 300 },
    );
    // A schema that nests itself without end still answers, quickly.
    const started = performance.now();
    sampleJson({ $ref: '#', type: 'object', properties: { a: { $ref: '#' }, b: { $ref: '#' }, c: { $ref: '#' } } }, source);
    assert.ok(performance.now() - started < 100);
  });
});
