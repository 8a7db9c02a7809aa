// The simulator's embeddings: for each input a unit-length vector of the asked length, made from
// a hash of the input (the same input always gets the same vector; different inputs nearly
// orthogonal ones), as floats or as OpenAI's base64 (little-endian float32). Only the start of an
// input is read, and the event loop is given back between inputs of a large batch.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type EmbedCall, type Embedding, type EmbeddingList, inputsOf } from './backend.ts';
import { fnv1a } from './simulator-answer.ts';

/** Values made between two turns of the event loop. */
const VALUES_PER_TURN = 65_536;
const READ_CHARS = 4096;

/** mulberry32: a small seeded generator, so a vector is a function of its input alone. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(input: string | readonly number[]): number {
  if (typeof input === 'string') return fnv1a(`${input.length}:${input.slice(0, READ_CHARS)}`);
  return fnv1a(`${input.length}:${input.slice(0, READ_CHARS).join(',')}`);
}

export function unitVector(input: string | readonly number[], dimensions: number): Float32Array {
  const next = generator(seedOf(input));
  const v = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    v[i] = next() * 2 - 1;
    norm += (v[i] as number) ** 2;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] as number) * scale;
  return v;
}

export async function simulateEmbeddings({ request, dimensions, inputTokens, signal }: EmbedCall): Promise<EmbeddingList> {
  const base64 = request.encoding_format === 'base64';
  const data: Embedding[] = [];
  let made = 0;
  for (const [index, input] of inputsOf(request.input).entries()) {
    if (made >= VALUES_PER_TURN) {
      await nextTurn(undefined, { signal });
      made = 0;
    }
    const v = unitVector(input, dimensions);
    made += dimensions;
    data.push({ object: 'embedding', index, embedding: base64 ? Buffer.from(v.buffer).toString('base64') : Array.from(v) });
  }
  return { object: 'list', data, model: request.model, usage: { prompt_tokens: inputTokens, total_tokens: inputTokens } };
}
