// POST /v1/responses for a model whose upstream serves the Responses API itself (the model's
// `responses_api`): the request is passed on as the client sent it (its own model name, an output
// limit the hold covers, store: false), and the upstream's Response or events are passed back
// with our response id, the model as the client named it, and our cost in the usage. Held and
// billed like every chat request: the limits and the hold are decided on the request made into
// chat completions (or, when it uses what only the Responses API has, on its text), the bill on
// the upstream's usage (a stream cut short: the prompt plus what was produced).
import type { ResponseBody, ResponsesEvent, Usage } from '../backends/backend.ts';
import type { ModelRoute } from '../backends/model-registry.ts';
import { ApiError } from '../errors.ts';
import type { Exchange } from './chat-completions.ts';
import type { AnswerReading } from './chat-json.ts';
import type { StreamEncoder, StreamTally } from './chat-stream.ts';
import { type ResponsesRequest, refuseStored, responseIdFor, responseUsage, toChatRequest } from './responses-translate.ts';
import type { SseWriter } from './sse.ts';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The request as chat completions, for its limits: translated, or its text when it cannot be. */
function asChat(body: ResponsesRequest) {
  refuseStored(body);
  try {
    return toChatRequest(body);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // Built-in tools, file inputs, reasoning items … are the upstream's to read; their JSON text
    // counts at least as many tokens as the model will read of them.
    const text = JSON.stringify([body.instructions ?? '', body.input, body.tools ?? []]);
    return { model: body.model, messages: [{ role: 'user', content: text }], max_completion_tokens: body.max_output_tokens ?? null };
  }
}

const usageOf = (u: ResponseBody['usage']): Usage | undefined =>
  u ? { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.total_tokens } : undefined;

/** How a response finished, in chat's terms (for the usage record). */
function finishOf(r: ResponseBody): string {
  if (r.status === 'incomplete') {
    const reason = isObject(r.incomplete_details) ? r.incomplete_details.reason : undefined;
    return reason === 'content_filter' ? 'content_filter' : 'length';
  }
  return r.output.some((o) => isObject(o) && o.type === 'function_call') ? 'tool_calls' : 'stop';
}

/** Text a response's output items carry: messages' text and refusals, function calls' names and arguments. */
function producedOf(output: unknown[]): string {
  let text = '';
  for (const item of output) {
    if (!isObject(item)) continue;
    if (typeof item.name === 'string') text += item.name;
    if (typeof item.arguments === 'string') text += item.arguments;
    if (Array.isArray(item.content)) {
      for (const part of item.content) {
        if (!isObject(part)) continue;
        if (typeof part.text === 'string') text += part.text;
        if (typeof part.refusal === 'string') text += part.refusal;
      }
    }
  }
  return text;
}

/** The upstream's usage with our billed counts and cost (its token details kept). */
const billedUsage = (upstream: ResponseBody['usage'], usage: Usage & { cost_cents: number }) => ({
  ...(upstream ?? responseUsage(usage)),
  input_tokens: usage.prompt_tokens,
  output_tokens: usage.completion_tokens,
  total_tokens: usage.prompt_tokens + usage.completion_tokens,
  cost_cents: usage.cost_cents,
});

const PRODUCING_DELTAS = new Set(['response.output_text.delta', 'response.refusal.delta', 'response.function_call_arguments.delta']);

export function passthrough(route: ModelRoute, body: ResponsesRequest, requestId: string): Exchange<ResponseBody, ResponsesEvent> {
  const responses = route.backend.responses?.bind(route.backend);
  if (!responses) throw new Error(`model ${route.model.id}: its backend does not serve the Responses API`);
  const stream = body.stream === true;
  const id = responseIdFor(requestId);
  /** The response as we answer it: our id, the model as the client named it. */
  const ours = (r: ResponseBody) => {
    r.id = id;
    r.model = body.model;
    return r;
  };
  return {
    chat: asChat(body),
    stream,
    params: { output: 'max_output_tokens', prompt: 'input' },
    async call({ signal, perChoice }) {
      const request: Obj = { ...body, model: route.model.upstream_model ?? route.model.id, store: false };
      if (body.max_output_tokens == null) request.max_output_tokens = perChoice;
      const result = await responses({ request, stream, signal });
      return result.kind === 'json' ? result : { kind: 'stream', items: result.events };
    },
    read: (r): AnswerReading => ({ usage: usageOf(r.usage), produced: () => producedOf(r.output), finishReason: finishOf(r) }),
    json(r, usage) {
      ours(r).usage = billedUsage(r.usage, usage) as ResponseBody['usage'];
      return r;
    },
    readItem(event: ResponsesEvent, tally: StreamTally) {
      if (PRODUCING_DELTAS.has(event.type) && typeof event.delta === 'string') tally.add(event.delta);
      const r = event.response;
      if (!r) return;
      if (Number.isSafeInteger(r.created_at)) tally.created = r.created_at as number;
      if (event.type === 'response.completed' || event.type === 'response.incomplete') {
        tally.usage = usageOf(r.usage);
        tally.finishReason = finishOf(r);
      }
    },
    encoder: () => passedOn(id, body.model, ours),
  };
}

/**
 * The upstream's events as they came, but the last (response.completed or .incomplete), which is
 * held back until the bill is known and then sent with our cost in its usage. Events we add (a
 * failure) continue the upstream's sequence numbers.
 */
function passedOn(id: string, model: string, ours: (r: ResponseBody) => ResponseBody): StreamEncoder<ResponsesEvent> {
  let next = 0;
  let last: ResponsesEvent | undefined;
  const send = (sse: SseWriter, event: ResponsesEvent) => {
    event.sequence_number = next++;
    return sse.send(event, event.type);
  };
  const bare = (status: string): ResponseBody => ({ id, object: 'response', model, status, output: [], usage: null });
  return {
    chunk(sse, event) {
      if (Number.isSafeInteger(event.sequence_number)) next = Math.max(next, event.sequence_number as number);
      if (event.response) ours(event.response);
      if (event.type === 'response.completed' || event.type === 'response.incomplete') {
        last = event;
        return undefined;
      }
      return send(sse, event);
    },
    end(sse, usage) {
      const event = last ?? { type: 'response.completed', response: bare('completed') };
      const response = event.response as ResponseBody;
      response.usage = billedUsage(response.usage, usage) as ResponseBody['usage'];
      const sent = send(sse, event);
      sse.end();
      return sent;
    },
    fail(sse, failure) {
      const error = failure.toBody().error;
      // The SDKs raise an APIError for an event that carries `error`.
      send(sse, { type: 'error', code: error.code, message: error.message, param: error.param, error });
      const sent = send(sse, {
        type: 'response.failed',
        response: { ...bare('failed'), error: { code: error.code ?? error.type, message: error.message } },
      });
      sse.end();
      return sent;
    },
  };
}
