// The clients developers use, on their default paths, against the real server over HTTP: the
// Vercel AI SDK's `openai('bizora')` (the Responses API) with generateText and streamText and a
// tool it runs, and @openai/agents' default run() (the Responses API) with a tool. Each against
// an sk_test_ key (the simulator) and against an upstream that speaks chat completions only;
// each checks the bill (/v1/generation for the response ids the client saw) and the books.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled } from '@openai/agents';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream, TOOL_ARGUMENTS } from './support/mock-upstream.ts';

// The Agents SDK exports traces to OpenAI by default; there is nowhere to send them here.
setTracingDisabled(true);

type Generation = { id: string; status: string; usage: { prompt_tokens: number; completion_tokens: number; cost_cents: number } };

const cities: string[] = [];
const weatherInput = z.object({ city: z.string() });
const weatherOf = (city: string) => {
  cities.push(city);
  return `Sunny and 21 degrees in ${city}.`;
};

type Setup = { name: string; mode: 'test' | 'live'; upstream: boolean; city: string };
const SETUPS: Setup[] = [
  // The simulator fills a city-like field with the prompt's capitalised word.
  { name: 'an sk_test_ key (the simulator)', mode: 'test', upstream: false, city: 'Paris' },
  { name: 'an upstream that speaks chat completions only', mode: 'live', upstream: true, city: JSON.parse(TOOL_ARGUMENTS).city },
];

for (const setup of SETUPS) {
  describe(`real clients on their default paths, against ${setup.name}`, () => {
    let h: Harness;
    let mock: MockUpstream | undefined;
    let key: string;
    const model = setup.upstream ? testModel({ backend: 'openai-compatible', upstream_model: 'mock-model-1' }) : testModel();

    before(async () => {
      if (setup.upstream) mock = await startMockUpstream();
      h = await startHarness('sqlite', { models: [{ ...model, ...(mock ? { upstream_url: mock.url } : {}) }] });
      const account = await h.newAccount({ cents: 1_000 });
      ({ key } = await h.newKey(account.id, { mode: setup.mode }));
    });
    after(async () => {
      await h.close();
      await mock?.close();
    });
    afterEach(() => assertBooksBalance(h));

    /** Each response id the client was answered with is billed: found, succeeded, usage as sent. */
    async function assertBilled(ids: string[]) {
      assert.ok(ids.length > 0);
      for (const id of ids) {
        assert.match(id, /^resp_/);
        const res = await fetch(`${h.baseURL}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
        const g = (await res.json()) as Generation;
        assert.equal(res.status, 200);
        assert.equal(g.status, 'succeeded');
        assert.ok(g.usage.prompt_tokens > 0 && g.usage.completion_tokens > 0);
      }
    }

    const provider = () => createOpenAI({ apiKey: key, baseURL: h.baseURL });
    const weather = () =>
      tool({ description: 'Get the weather in a city', inputSchema: weatherInput, execute: async ({ city }) => weatherOf(city) });

    test("the AI SDK's openai('bizora') generateText: calls the tool, runs it, answers from its result", async () => {
      const upstreamBefore = mock?.requests.length ?? 0;
      cities.length = 0;
      const result = await generateText({
        model: provider()('bizora'),
        prompt: 'What is the weather in Paris?',
        tools: { get_weather: weather() },
        stopWhen: stepCountIs(3),
      });
      assert.deepEqual(cities, [setup.city]);
      assert.equal(result.steps.length, 2);
      assert.equal(result.steps[0]?.finishReason, 'tool-calls');
      assert.equal(result.steps[1]?.finishReason, 'stop');
      assert.ok(result.text.length > 0);
      assert.ok(result.totalUsage.inputTokens && result.totalUsage.inputTokens > 0);
      await assertBilled(result.steps.map((s) => s.response.id));
      // Upstream, both steps went as chat completions, the second with the tool's result.
      if (mock) {
        const sent = mock.requests.slice(upstreamBefore).map((r) => r.body.messages as Array<{ role: string; content: unknown }>);
        assert.equal(sent.length, 2);
        assert.equal(sent[1]?.at(-1)?.role, 'tool');
        assert.match(String(sent[1]?.at(-1)?.content), new RegExp(`Sunny and 21 degrees in ${setup.city}`));
      }
    });

    test("the AI SDK's streamText: the tool call and the answer arrive streamed", async () => {
      cities.length = 0;
      const result = streamText({
        model: provider()('bizora'),
        prompt: 'What is the weather in Paris?',
        tools: { get_weather: weather() },
        stopWhen: stepCountIs(3),
      });
      let text = '';
      const parts: string[] = [];
      for await (const part of result.fullStream) {
        if (part.type === 'error') throw part.error;
        if (part.type === 'text-delta') text += part.text;
        if (part.type === 'tool-call' || part.type === 'tool-result' || part.type === 'finish-step') parts.push(part.type);
      }
      assert.deepEqual(parts, ['tool-call', 'tool-result', 'finish-step', 'finish-step']);
      assert.deepEqual(cities, [setup.city]);
      assert.ok(text.length > 0);
      assert.equal(text, await result.text);
      await assertBilled((await result.steps).map((s) => s.response.id));
    });

    // The sandbox's structured answers (the mock upstream answers words, not JSON; what goes
    // upstream for text.format is checked in responses.test.ts).
    if (!setup.upstream)
      test("the AI SDK's generateObject: a structured answer (text.format json_schema) that fits the schema", async () => {
        const schema = z.object({ city: z.string(), temperature: z.number(), sunny: z.boolean(), tags: z.array(z.string()) });
        const result = await generateObject({ model: provider()('bizora'), schema, prompt: 'Describe the weather in Paris.' });
        assert.deepEqual(Object.keys(result.object).sort(), ['city', 'sunny', 'tags', 'temperature']);
        assert.equal(schema.safeParse(result.object).success, true);
        await assertBilled([result.response.id]);
      });

    test("@openai/agents' default run(): the agent calls its tool over the Responses API and answers", async () => {
      cities.length = 0;
      const seen: string[] = [];
      const agent = new Agent({
        name: 'Weather',
        instructions: 'Answer questions about the weather.',
        model: 'bizora',
        tools: [
          agentTool({
            name: 'get_weather',
            description: 'Get the weather in a city',
            parameters: weatherInput,
            execute: async ({ city }) => weatherOf(city),
          }),
        ],
      });
      const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: key, baseURL: h.baseURL }) });
      const result = await runner.run(agent, 'What is the weather in Paris?');
      for (const r of result.rawResponses) if (r.responseId) seen.push(r.responseId);
      assert.deepEqual(cities, [setup.city]);
      assert.equal(typeof result.finalOutput, 'string');
      assert.ok((result.finalOutput as string).length > 0);
      assert.equal(seen.length, 2);
      assert.ok(result.newItems.some((i) => i.type === 'tool_call_output_item'));
      await assertBilled(seen);
    });
  });
}
