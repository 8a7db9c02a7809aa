// The mock upstream's Responses API (POST /v1/responses), as OpenAI serves it: a Response object
// or its events (response.created … response.output_text.delta … response.completed with usage),
// its id and item ids its own. The input's text picks a fault:
//   mock:error:<status>   answers that status with an OpenAI error body
//   mock:cut              streams three words, then drops the connection
//   mock:failed           streams response.created, then response.failed
//   mock:no-usage         reports no usage
import type { ServerResponse } from 'node:http';

const WORDS = ['Hello', ' from', ' the', ' mock', ' upstream', ' model', '.'];

export async function answerResponses(res: ServerResponse, body: Record<string, unknown>, promptTokens: number): Promise<void> {
  const said = JSON.stringify(body.input ?? '');
  const has = (magic: string) => said.includes(`mock:${magic}`);
  const status = /mock:error:(\d{3})/.exec(said);
  if (status) {
    res.writeHead(Number(status[1]), { 'content-type': 'application/json' }).end(
      JSON.stringify({
        error: { message: `mock upstream says ${status[1]}`, type: 'invalid_request_error', param: 'input', code: 'mock_code' },
      }),
    );
    return;
  }
  const max = typeof body.max_output_tokens === 'number' ? body.max_output_tokens : 1000;
  const words = WORDS.slice(0, Math.min(WORDS.length, max));
  const text = words.join('');
  const incomplete = words.length < WORDS.length;
  const usage = has('no-usage')
    ? null
    : {
        input_tokens: promptTokens,
        input_tokens_details: { cached_tokens: 3 },
        output_tokens: words.length,
        output_tokens_details: { reasoning_tokens: 2 },
        total_tokens: promptTokens + words.length,
      };
  const response = (state: string, output: unknown[], u: unknown) => ({
    id: 'resp_upstream1',
    object: 'response',
    created_at: 1_700_000_000,
    status: state,
    incomplete_details: state === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    error: null,
    model: String(body.model),
    output,
    store: body.store ?? true,
    tools: body.tools ?? [],
    usage: u,
  });
  const message = (t: string, state: string) => ({
    type: 'message',
    id: 'msg_upstream1',
    status: state,
    role: 'assistant',
    content: [{ type: 'output_text', text: t, annotations: [] }],
  });
  const finalState = incomplete ? 'incomplete' : 'completed';
  if (!body.stream) {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(response(finalState, [message(text, 'completed')], usage)));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let seq = 0;
  const send = (type: string, data: object) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  send('response.created', { response: response('in_progress', [], null) });
  if (has('failed')) {
    send('response.failed', {
      response: { ...response('failed', [], null), error: { code: 'server_error', message: 'mock upstream failed' } },
    });
    res.end();
    return;
  }
  const item = { item_id: 'msg_upstream1', output_index: 0, content_index: 0 };
  send('response.output_item.added', { output_index: 0, item: message('', 'in_progress') });
  send('response.content_part.added', { ...item, part: { type: 'output_text', text: '', annotations: [] } });
  for (const [i, w] of words.entries()) {
    if (has('cut') && i === 3) {
      // After a pause, so what precedes the cut reaches the gateway before the cut does.
      await new Promise((r) => setTimeout(r, 20));
      res.destroy();
      return;
    }
    send('response.output_text.delta', { ...item, delta: w });
  }
  send('response.output_text.done', { ...item, text });
  send('response.content_part.done', { ...item, part: { type: 'output_text', text, annotations: [] } });
  send('response.output_item.done', { output_index: 0, item: message(text, 'completed') });
  send(`response.${finalState}`, { response: response(finalState, [message(text, 'completed')], usage) });
  res.end();
}
