// A local OpenAI-compatible model provider for tests: answers JSON and SSE with usage, and
// misbehaves on request. The last user message picks the behaviour:
//   mock:error:<status>   answers that status with an OpenAI error body (429: Retry-After: 7)
//   mock:huge-error       a 500 whose body is 4 MiB
//   mock:error-200        a 200 whose JSON body is an OpenAI error
//   mock:reset            drops the connection before answering anything
//   mock:reset-headers    sends the 200 and its headers, then drops the connection
//   mock:stall            never answers (until the caller gives up)
//   mock:slow             streams a chunk every 100 ms (20 chunks)
//   mock:flood            streams 1.2 KB chunks as fast as the reader takes them, until it goes away
//   mock:no-usage         omits usage
//   mock:usage:<kind>     reports usage that is negative, fractional, huge or string
//   mock:json-stream      answers a stream request with a complete JSON answer
//   mock:sse-json         answers a JSON request with a stream
//   mock:null-choice      JSON: {"choices":[null]} and nothing else; stream: one extra chunk whose choices are [null]
//   mock:null-tool-call   JSON: a message whose tool_calls are [null]
//   mock:huge-answer      JSON: an answer of 17 MiB
// Faults inside an answer, after three words ("Hello from the"; with mock:first, before any):
//   mock:cut              drops the connection (JSON: half-way through the body)
//   mock:stall-mid        stops sending and keeps the connection open
//   mock:malformed        a stream event that is not JSON (JSON: a body that is not JSON)
//   mock:non-object       the stream event `data: 42`
//   mock:error-event      the stream event `data: {"error": …}`, then the end of the body
//   mock:huge-event       one stream event of 2 MiB
// Offered tools, and the last message not a tool result, it calls the first tool with
// TOOL_ARGUMENTS (as OpenAI does: finish_reason tool_calls; streamed in pieces of 8 characters).
// POST /v1/responses is the Responses API (mock-responses.ts).
// It records every request (headers, body) and how many connections were closed on it early.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerResponses } from './mock-responses.ts';

export type MockUpstream = {
  url: string;
  requests: Array<{ headers: IncomingMessage['headers']; body: Record<string, unknown> }>;
  abortedByClient: number;
  /** Usage the mock reports for a normal answer: prompt tokens fixed, completion = min(max_tokens, 7). */
  promptTokens: number;
  close(): Promise<void>;
};

export const WORDS = ['Hello', ' from', ' the', ' mock', ' upstream', ' model', '.'];
/** The arguments of the mock's tool calls. */
export const TOOL_ARGUMENTS = '{"city":"Paris"}';
/** How many words a stream sends before a mid-answer fault. */
export const WORDS_BEFORE_FAULT = 3;

const BAD_USAGE: Record<string, unknown> = {
  negative: { prompt_tokens: -5000, completion_tokens: -3, total_tokens: -5003 },
  fractional: { prompt_tokens: 11.5, completion_tokens: 0.25, total_tokens: 11.75 },
  huge: { prompt_tokens: 1e15, completion_tokens: 1e15, total_tokens: 2e15 },
  string: { prompt_tokens: '11', completion_tokens: '7', total_tokens: '18' },
};

const STREAM_FAULTS = ['cut', 'stall-mid', 'malformed', 'non-object', 'error-event', 'huge-event'] as const;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends one fault inside a stream; the caller writes nothing after it. */
function streamFault(res: ServerResponse, fault: (typeof STREAM_FAULTS)[number]): void {
  switch (fault) {
    case 'cut':
      res.destroy();
      return;
    case 'stall-mid':
      return; // the connection stays open, silent
    case 'malformed':
      res.end('data: {"id":"chatcmpl-upstream123","choices":[{"delta":{"content":" oops"\n\ndata: [DONE]\n\n');
      return;
    case 'non-object':
      res.end('data: 42\n\ndata: [DONE]\n\n');
      return;
    case 'error-event':
      res.end(`data: ${JSON.stringify({ error: { message: 'mock upstream overloaded', type: 'server_error', code: null } })}\n\n`);
      return;
    case 'huge-event':
      res.end(`data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(2 * 1024 * 1024)}"}}]}\n\ndata: [DONE]\n\n`);
      return;
  }
}

/**
 * mock:huge-answer's body, made once per process: building 17 MiB of JSON for each request took
 * longer than a test's upstream deadline on a loaded machine, and the test got a 504, not a 502.
 */
let huge: Buffer | undefined;
export const hugeAnswer = (): Buffer => {
  huge ??= Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-upstream123',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'mock-model',
      choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(17 * 1024 * 1024) }, finish_reason: 'stop' }],
    }),
  );
  return huge;
};

export async function startMockUpstream(opts: { promptTokens?: number } = {}): Promise<MockUpstream> {
  const state: MockUpstream = {
    url: '',
    requests: [],
    abortedByClient: 0,
    promptTokens: opts.promptTokens ?? 11,
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.url === '/v1/embeddings' && req.method === 'POST') {
      // One 4-number vector per input (what the gateway passes on, it does not make), usage as given.
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: unknown; encoding_format?: string };
      state.requests.push({ headers: req.headers, body: body as Record<string, unknown> });
      const inputs = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
      const vector = [0.5, 0.5, 0.5, 0.5];
      const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          object: 'list',
          data: inputs.map((_, index) => ({ object: 'embedding', index, embedding })),
          model: 'mock-embed',
          usage: { prompt_tokens: state.promptTokens, total_tokens: state.promptTokens },
        }),
      );
      return;
    }
    if (req.url === '/v1/responses' && req.method === 'POST') {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      state.requests.push({ headers: req.headers, body });
      await answerResponses(res, body, state.promptTokens);
      return;
    }
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    state.requests.push({ headers: req.headers, body });
    let finished = false;
    res.on('close', () => {
      if (!finished) state.abortedByClient++;
    });
    res.on('finish', () => {
      finished = true;
    });
    const messages = body.messages as Array<{ role: string; content: string }>;
    const said = String(messages.at(-1)?.content ?? '');
    const has = (magic: string) => said.includes(`mock:${magic}`);
    const maxTokens = (body.max_completion_tokens ?? body.max_tokens ?? 1000) as number;
    const words = WORDS.slice(0, Math.min(WORDS.length, maxTokens));
    const badUsage = /mock:usage:(\w+)/.exec(said)?.[1];
    // n choices (JSON answers): each the same words, usage their sum, as OpenAI counts them.
    const n = typeof body.n === 'number' && body.n > 1 ? body.n : 1;
    const usage = badUsage
      ? BAD_USAGE[badUsage]
      : { prompt_tokens: state.promptTokens, completion_tokens: n * words.length, total_tokens: state.promptTokens + n * words.length };
    const base = { id: 'chatcmpl-upstream123', created: 1_700_000_000, model: String(body.model) };
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) =>
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
    const completion = (content: string) => ({
      ...base,
      object: 'chat.completion',
      choices: Array.from({ length: n }, (_, index) => ({
        index,
        message: { role: 'assistant', content },
        finish_reason: words.length < WORDS.length ? 'length' : 'stop',
      })),
      ...(has('no-usage') ? {} : { usage }),
    });

    const errorStatus = /mock:error:(\d{3})/.exec(said);
    if (errorStatus) {
      const status = Number(errorStatus[1]);
      json(
        status,
        {
          error: {
            message: `mock upstream says ${status}`,
            type: status < 500 ? 'invalid_request_error' : 'server_error',
            param: status === 400 ? 'temperature' : null,
            code: status === 400 ? 'mock_bad_param' : null,
          },
        },
        status === 429 ? { 'retry-after': '7' } : {},
      );
      return;
    }
    if (has('huge-error')) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('e'.repeat(4 * 1024 * 1024));
      return;
    }
    if (has('error-200')) {
      json(200, { error: { message: 'mock upstream is confused', type: 'server_error' } });
      return;
    }
    if (has('reset')) {
      if (has('reset-headers')) {
        res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json' });
        res.flushHeaders();
        await pause(20);
      }
      res.destroy();
      return;
    }
    if (has('stall') && !has('stall-mid')) return; // never answer
    const fault = STREAM_FAULTS.find((f) => has(f));
    const faultAt = has('first') ? 0 : WORDS_BEFORE_FAULT;
    const tools = body.tools as Array<{ function: { name: string } }> | undefined;
    if (tools?.length && messages.at(-1)?.role !== 'tool') {
      toolCall(res, body, tools[0]?.function.name ?? '', {
        ...base,
        usage: { prompt_tokens: state.promptTokens, completion_tokens: 5, total_tokens: state.promptTokens + 5 },
      });
      return;
    }

    if (!body.stream || has('json-stream')) {
      if (has('sse-json')) {
        res
          .writeHead(200, { 'content-type': 'text/event-stream' })
          .end(`data: ${JSON.stringify(completion(words.join('')))}\n\ndata: [DONE]\n\n`);
      } else if (has('null-tool-call')) {
        const answer = completion(words.join(''));
        (answer.choices[0]?.message as Record<string, unknown>).tool_calls = [null];
        json(200, answer);
      } else if (has('null-choice')) {
        json(200, { choices: [null] }); // exactly what the hostile-client pass sent
      } else if (has('huge-answer')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(hugeAnswer());
      } else if (fault === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": "chatcmpl-upstream123", "choices": [');
      } else if (fault === 'cut' || fault === 'stall-mid') {
        const text = JSON.stringify(completion(words.join('')));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(text.length) });
        res.write(text.slice(0, text.length / 2));
        if (fault === 'cut') {
          await pause(20);
          res.destroy();
        }
      } else {
        json(200, completion(words.join('')));
      }
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    if (has('flood')) {
      const word = ' flood'.repeat(200);
      send(chunk({ role: 'assistant', content: '' }, null));
      for (let i = 0; !res.destroyed && i < 100_000; i++) {
        // Paced a little, as a model is: it streams for seconds rather than filling memory.
        if (!send(chunk({ content: word }, null))) await new Promise((r) => res.once('drain', r).once('close', r));
        else if (i % 8 === 7) await pause(5);
      }
      res.end('data: [DONE]\n\n');
      return;
    }
    const slow = has('slow');
    const stream = slow ? Array.from({ length: 20 }, (_, i) => ` w${i}`) : words;
    if (fault && faultAt === 0) {
      res.flushHeaders();
      await pause(20);
      streamFault(res, fault);
      return;
    }
    send(chunk({ role: 'assistant', content: '' }, null));
    for (let i = 0; i < stream.length; i++) {
      // Slow streams pace their chunks; a faulty stream paces too, so what precedes the fault
      // reaches the gateway (and is sent on) before the fault does.
      if (slow || fault) await pause(slow ? 100 : 20);
      if (res.destroyed) return;
      if (fault && i === faultAt) {
        streamFault(res, fault);
        return;
      }
      if (i === 1 && has('null-choice')) send({ ...base, object: 'chat.completion.chunk', choices: [null] });
      send(chunk({ content: stream[i] }, null));
    }
    send(chunk({}, 'stop'));
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (includeUsage && !has('no-usage')) send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

/** A call of `name` with TOOL_ARGUMENTS, as JSON or as a stream whose arguments come in pieces. */
function toolCall(
  res: ServerResponse,
  body: Record<string, unknown>,
  name: string,
  base: { id: string; created: number; model: string; usage: unknown },
): void {
  const call = { id: 'call_mock1', type: 'function', function: { name, arguments: TOOL_ARGUMENTS } };
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [call] }, finish_reason: 'tool_calls' }],
      }),
    );
    return;
  }
  const { usage, ...head } = base;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const send = (choices: unknown[], extra: object = {}) =>
    res.write(`data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
  send([
    {
      index: 0,
      delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, ...call, function: { name, arguments: '' } }] },
      finish_reason: null,
    },
  ]);
  for (let i = 0; i < TOOL_ARGUMENTS.length; i += 8) {
    send([
      { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: TOOL_ARGUMENTS.slice(i, i + 8) } }] }, finish_reason: null },
    ]);
  }
  send([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]);
  send([], { usage });
  res.end('data: [DONE]\n\n');
}
