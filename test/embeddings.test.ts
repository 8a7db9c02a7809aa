// POST /v1/embeddings through the real openai SDK (which asks for base64 by default and decodes
// it) and over HTTP: the simulator's deterministic unit vectors, dimensions, token arrays, the
// bill (held and charged per input token, shown by /v1/generation), the refusals, and an
// openai-compatible upstream behind it. Billing is the ledger's code on both databases; here
// SQLite.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { costMicros } from '../src/billing/pricing.ts';
import { loadConfig } from '../src/config.ts';
import { countText } from '../src/lib/tokens.ts';
import { assertBooksBalance, type Harness, startHarness, testModel } from './support/harness.ts';
import { type MockUpstream, startMockUpstream } from './support/mock-upstream.ts';

const norm = (v: number[]) => Math.hypot(...v);
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

describe('embeddings with the default catalogue (bizora-embed, the simulator)', () => {
  let h: Harness;
  let client: OpenAI;
  let key: string;
  let accountId: string;
  const embedModel = loadConfig({}).models.find((m) => m.kind === 'embedding');

  before(async () => {
    h = await startHarness('sqlite', { models: [...loadConfig({}).models] });
    accountId = (await h.newAccount({ cents: 100 })).id;
    ({ key } = await h.newKey(accountId));
    client = new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
  });
  after(() => h.close());
  afterEach(() => assertBooksBalance(h));

  test('the default catalogue has an embedding model, listed with its kind, dimensions and price', async () => {
    assert.ok(embedModel);
    const listed = (await client.models.list()).data as unknown as Array<{ id: string; kind: string; dimensions?: number }>;
    assert.deepEqual(
      listed.map((m) => [m.id, m.kind, m.dimensions]),
      [
        ['bizora', 'chat', undefined],
        ['bizora-embed', 'embedding', 1536],
      ],
    );
  });

  test('float and base64 give the same unit vectors, one per input, the same for the same input', async () => {
    const input = ['The cat sat on the mat.', 'Quarterly revenue grew.', 'The cat sat on the mat.'];
    const sdkDefault = await client.embeddings.create({ model: 'bizora-embed', input }); // base64 on the wire
    const float = await client.embeddings.create({ model: 'bizora-embed', input, encoding_format: 'float' });
    assert.equal(sdkDefault.data.length, 3);
    for (const [i, e] of float.data.entries()) {
      assert.equal(e.index, i);
      assert.equal(e.embedding.length, 1536);
      assert.ok(Math.abs(norm(e.embedding) - 1) < 1e-5);
      const decoded = sdkDefault.data[i]?.embedding as number[];
      assert.ok(
        decoded.every((x, j) => Math.abs(x - (e.embedding[j] as number)) < 1e-7),
        'base64 is little-endian float32 of the same vector',
      );
    }
    const [a, b, c] = float.data.map((d) => d.embedding) as [number[], number[], number[]];
    assert.deepEqual(a, c);
    assert.ok(Math.abs(dot(a, b)) < 0.2, 'different inputs are nearly orthogonal');
    const raw = await fetch(`${h.baseURL}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bizora-embed', input: 'x', encoding_format: 'base64' }),
    });
    const body = (await raw.json()) as { data: Array<{ embedding: unknown }> };
    assert.equal(typeof body.data[0]?.embedding, 'string');
    assert.equal(Buffer.from(body.data[0]?.embedding as string, 'base64').length, 1536 * 4);
  });

  test('dimensions shortens the vector (still unit length); token arrays are inputs too', async () => {
    const short = await client.embeddings.create({ model: 'bizora-embed', input: 'hello', dimensions: 256, encoding_format: 'float' });
    assert.equal(short.data[0]?.embedding.length, 256);
    assert.ok(Math.abs(norm(short.data[0]?.embedding as number[]) - 1) < 1e-5);
    const tokens = await client.embeddings.create({ model: 'bizora-embed', input: [[15339, 1917], [15339]], encoding_format: 'float' });
    assert.equal(tokens.data.length, 2);
    assert.equal(tokens.usage.prompt_tokens, 3);
  });

  test('billed per input token at the model’s input price; /v1/generation shows the bill', async () => {
    const input = ['one input', 'and another one'];
    const before = await h.balanceMicros(accountId);
    const { data, response } = await client.embeddings.create({ model: 'bizora-embed', input }).withResponse();
    const tokens = input.reduce((s, t) => s + countText(t), 0);
    assert.equal(data.usage.prompt_tokens, tokens);
    const cost = costMicros(embedModel?.price ?? testModel().price, tokens, 0);
    assert.equal((data.usage as unknown as { cost_cents: number }).cost_cents, cost / 10_000);
    assert.equal(before.balance - (await h.balanceMicros(accountId)).balance, cost);
    const requestId = response.headers.get('x-request-id');
    const g = (await (await fetch(`${h.baseURL}/generation?id=${requestId}`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      model: string;
      status: string;
      usage: { prompt_tokens: number; completion_tokens: number; cost_cents: number };
    };
    assert.deepEqual(
      [g.model, g.status, g.usage.prompt_tokens, g.usage.completion_tokens, g.usage.cost_cents],
      ['bizora-embed', 'succeeded', tokens, 0, cost / 10_000],
    );
  });

  test('refusals: a chat model, a chat request to the embedding model, dimensions too large, an input too long, too many numbers, no balance', async () => {
    const refused = async (p: Promise<unknown>, status: number, param: string | null, message: RegExp) => {
      const err = (await p.then(
        () => assert.fail('not refused'),
        (e: unknown) => e,
      )) as InstanceType<typeof OpenAI.APIError>;
      assert.equal(err.status, status);
      assert.equal(err.param ?? null, param);
      assert.match(err.message, message);
    };
    await refused(client.embeddings.create({ model: 'bizora', input: 'x' }), 400, 'model', /chat model.*\/v1\/chat\/completions/);
    await refused(
      client.chat.completions.create({ model: 'bizora-embed', messages: [{ role: 'user', content: 'x' }] }),
      400,
      'model',
      /embedding model.*\/v1\/embeddings/,
    );
    await refused(client.embeddings.create({ model: 'bizora-embed', input: 'x', dimensions: 4096 }), 400, 'dimensions', /at most 1536/);
    await refused(client.embeddings.create({ model: 'bizora-embed', input: 'word '.repeat(9000) }), 400, 'input', /more than 8192 tokens/);
    await refused(client.embeddings.create({ model: 'bizora-embed', input: Array(700).fill('x') }), 400, 'input', /batches of 682/);
    await refused(client.embeddings.create({ model: 'bizora-embed', input: [] }), 400, 'input', /./);
    const broke = await h.newAccount();
    const poor = new OpenAI({ apiKey: (await h.newKey(broke.id)).key, baseURL: h.baseURL, maxRetries: 0 });
    await refused(poor.embeddings.create({ model: 'bizora-embed', input: 'x' }), 402, null, /./);
  });

  test('an sk_test_ key gets the same vectors, never billed', async () => {
    const { key: testKey } = await h.newKey(accountId, { mode: 'test' });
    const sandbox = new OpenAI({ apiKey: testKey, baseURL: h.baseURL, maxRetries: 0 });
    const before = await h.balanceMicros(accountId);
    const a = await sandbox.embeddings.create({ model: 'bizora-embed', input: 'same', encoding_format: 'float' });
    const b = await client.embeddings.create({ model: 'bizora-embed', input: 'same', encoding_format: 'float' });
    assert.deepEqual(a.data[0]?.embedding, b.data[0]?.embedding);
    assert.equal((a.usage as unknown as { cost_cents: number }).cost_cents, 0);
    const after = await h.balanceMicros(accountId);
    assert.equal(before.balance - after.balance, costMicros(embedModel?.price ?? testModel().price, countText('same'), 0));
  });
});

describe('embeddings from an openai-compatible upstream', () => {
  let h: Harness;
  let mock: MockUpstream;
  const model = testModel({ id: 'embed', kind: 'embedding', backend: 'openai-compatible', upstream_model: 'text-embedding-3-small' });
  before(async () => {
    mock = await startMockUpstream();
    h = await startHarness('sqlite', { models: [{ ...model, upstream_url: mock.url }] });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });
  afterEach(() => assertBooksBalance(h));

  test('the request goes upstream under the upstream’s name, as asked; billed at the upstream’s count', async () => {
    const account = await h.newAccount({ cents: 100 });
    const client = new OpenAI({ apiKey: (await h.newKey(account.id)).key, baseURL: h.baseURL, maxRetries: 0 });
    const before = await h.balanceMicros(account.id);
    const r = await client.embeddings.create({ model: 'embed', input: ['a first input', 'and a second one'], dimensions: 4 });
    const seen = mock.requests.at(-1)?.body;
    assert.deepEqual([seen?.model, seen?.dimensions, seen?.encoding_format], ['text-embedding-3-small', 4, 'base64']);
    assert.equal(r.model, 'embed');
    assert.deepEqual(r.data[1]?.embedding, [0.5, 0.5, 0.5, 0.5]);
    assert.equal(r.usage.prompt_tokens, mock.promptTokens);
    assert.equal(before.balance - (await h.balanceMicros(account.id)).balance, costMicros(model.price, mock.promptTokens, 0));
  });
});
