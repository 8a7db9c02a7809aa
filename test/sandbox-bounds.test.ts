// The sandbox's work is bounded whatever a free sk_test_ key asks for: schemas that would make
// the sampled JSON huge or slow (nested arrays of a big const, thousands of allOf parts, a long
// $ref), a very long tool name, n=128 with top_logprobs: each answers quickly and boundedly, and
// the server stays up.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness, testModel } from './support/harness.ts';

const MiB = 1024 * 1024;

describe("the sandbox's answers are bounded, whatever a free key asks for (sqlite)", () => {
  let h: Harness;
  let testKey: string;
  before(async () => {
    h = await startHarness('sqlite', { models: [testModel({ max_output_tokens: 4096 })] });
    const account = await h.newAccount();
    ({ key: testKey } = await h.newKey(account.id, { mode: 'test' }));
  });
  after(() => h.close());

  const post = async (path: string, body: unknown) => {
    const started = performance.now();
    const res = await fetch(`${h.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${testKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, bytes: text.length, ms: performance.now() - started, text };
  };
  const schemaFormat = (schema: unknown) => ({ type: 'json_schema', name: 'x', schema });

  test('schemas that would make the sample huge or slow: nested arrays of a big const, 10,000 allOf parts, a long $ref', async () => {
    const nested = (leaf: unknown, defs: unknown) => ({
      type: 'object',
      properties: { a: { type: 'array', minItems: 256, items: { type: 'array', minItems: 7, items: leaf } } },
      $defs: defs,
    });
    const cases = {
      'a 200 KB const under nested arrays': nested({ $ref: '#/$defs/b' }, { b: { const: 'x '.repeat(100_000) } }),
      '10,000 allOf parts': { allOf: Array.from({ length: 10_000 }, (_, i) => ({ properties: { [`k${i}`]: {} } })) },
      'a 500 KB $ref under nested arrays': nested({ $ref: `#/${'a/'.repeat(250_000)}b` }, {}),
    };
    for (const [name, schema] of Object.entries(cases)) {
      const r = await post('/responses', { model: 'bizora', input: 'hi', max_output_tokens: 16, text: { format: schemaFormat(schema) } });
      assert.ok([200, 400].includes(r.status), `${name}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.ok(r.ms < 3000, `${name}: ${r.ms.toFixed(0)} ms`);
    }
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  });

  test('a 60,000-character tool name, and n=128 with top_logprobs 20 over a 400-property schema, answer quickly and boundedly', async () => {
    const long = await post('/responses', {
      model: 'bizora',
      input: 'hi',
      tools: [{ type: 'function', name: 'a'.repeat(60_000), parameters: { type: 'object', properties: {} } }],
      tool_choice: 'required',
    });
    assert.equal(long.status, 200, long.text.slice(0, 200));
    assert.ok(long.ms < 2000, `long tool name: ${long.ms.toFixed(0)} ms`);
    const properties = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`p${i}`, { type: 'string', minLength: 50 }]));
    const wide = await post('/chat/completions', {
      model: 'bizora',
      n: 128,
      logprobs: true,
      top_logprobs: 20,
      messages: [{ role: 'user', content: 'hi' }],
      response_format: schemaFormat({ type: 'object', properties }),
    });
    assert.equal(wide.status, 200, wide.text.slice(0, 200));
    assert.ok(wide.bytes < 16 * MiB, `${wide.bytes} bytes`);
    assert.ok(wide.ms < 5000, `n=128 with logprobs: ${wide.ms.toFixed(0)} ms`);
  });
});
