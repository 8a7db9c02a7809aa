// A local OpenAI-compatible model provider for tests: answers JSON and SSE with usage, and
// misbehaves on request. The last user message picks the behaviour:
//   mock:error:<status>   answers that status with an OpenAI error body
//   mock:stall            never answers (until the caller gives up)
//   mock:slow             streams a chunk every 100 ms (20 chunks)
//   mock:cut              streams three chunks, then drops the connection
//   mock:no-usage         omits usage
// It records every request (headers, body) and how many connections were closed on it early.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type MockUpstream = {
  url: string;
  requests: Array<{ headers: IncomingMessage['headers']; body: Record<string, unknown> }>;
  abortedByClient: number;
  /** Usage the mock reports for a normal answer: prompt tokens fixed, completion = min(max_tokens, 7). */
  promptTokens: number;
  close(): Promise<void>;
};

const WORDS = ['Hello', ' from', ' the', ' mock', ' upstream', ' model', '.'];

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
    const maxTokens = (body.max_completion_tokens ?? body.max_tokens ?? 1000) as number;
    const words = WORDS.slice(0, Math.min(WORDS.length, maxTokens));
    const usage = { prompt_tokens: state.promptTokens, completion_tokens: words.length, total_tokens: state.promptTokens + words.length };
    const base = { id: 'chatcmpl-upstream123', created: 1_700_000_000, model: String(body.model) };

    const errorStatus = /mock:error:(\d{3})/.exec(said);
    if (errorStatus) {
      const status = Number(errorStatus[1]);
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '7' } : {}) });
      res.end(
        JSON.stringify({
          error: {
            message: `mock upstream says ${status}`,
            type: status < 500 ? 'invalid_request_error' : 'server_error',
            param: status === 400 ? 'temperature' : null,
            code: status === 400 ? 'mock_bad_param' : null,
          },
        }),
      );
      return;
    }
    if (said.includes('mock:stall')) return; // never answer

    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: words.join('') },
              finish_reason: words.length < WORDS.length ? 'length' : 'stop',
            },
          ],
          ...(said.includes('mock:no-usage') ? {} : { usage }),
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const slow = said.includes('mock:slow');
    const cut = said.includes('mock:cut');
    const stream = slow ? Array.from({ length: 20 }, (_, i) => ` w${i}`) : words;
    send(chunk({ role: 'assistant', content: '' }, null));
    for (let i = 0; i < stream.length; i++) {
      // Slow streams pace their chunks; a cut stream paces too, so what precedes the cut is
      // flushed to the socket before the connection drops.
      if (slow || cut) await new Promise((r) => setTimeout(r, slow ? 100 : 20));
      if (cut && i === 3) {
        res.destroy();
        return;
      }
      if (res.destroyed) return;
      send(chunk({ content: stream[i] }, null));
    }
    send(chunk({}, 'stop'));
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (includeUsage && !said.includes('mock:no-usage')) send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
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
