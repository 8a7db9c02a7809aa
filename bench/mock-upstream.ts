// The benchmark's model provider: a fixed OpenAI-compatible answer (JSON, or SSE with a usage
// chunk), as fast as Node can serve it, so what is measured is the gateway in front of it.
import { createServer } from 'node:http';

const created = 1_700_000_000;
const usage = { prompt_tokens: 14, completion_tokens: 8, total_tokens: 22 };
const JSON_ANSWER = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created,
    model: 'bench-model',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the benchmark upstream.' }, finish_reason: 'stop' }],
    usage,
  }),
);
const chunk = (delta: object, finish: string | null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created, model: 'bench-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const SSE_ANSWER = Buffer.from(
  [
    chunk({ role: 'assistant', content: '' }, null),
    ...['Hello', ' from', ' the', ' benchmark', ' upstream.'].map((w) => chunk({ content: w }, null)),
    chunk({}, 'stop'),
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created, model: 'bench-model', choices: [], usage })}\n\n`,
    'data: [DONE]\n\n',
  ].join(''),
);

export function startMock(port: number): Promise<void> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      if (/"stream"\s*:\s*true/.test(body)) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.end(SSE_ANSWER);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_ANSWER.length });
        res.end(JSON_ANSWER);
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) {
  await startMock(Number(process.env.PORT));
  process.send?.('ready');
}
