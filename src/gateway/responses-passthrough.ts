// POST /v1/responses for a model whose upstream serves the Responses API itself (the model's
// `responses_api`): the request is passed on as the client sent it (its own model name, an output
// limit the hold covers, store: false), and the upstream's Response or events are passed back
// with our response id, the model as the client named it, and our cost in the usage. Only what
// can be billed goes: hosted tools, the upstream account's stored objects and other service tiers
// are a 400. Held like every chat request, but for the whole context window (what the upstream
// reads of files or reasoning items is more than the text shows), billed at the upstream's usage
// (a stream cut short: the prompt, counted from the request, plus what was produced).
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

const refused = (param: string, message: string) => new ApiError('invalid_request', { param, message });

/** The path of the first field named one of `names` anywhere in `value` (walked once, without recursion). */
function findField(value: unknown, names: ReadonlySet<string>, at: string): string | null {
  const stack: Array<[unknown, string]> = [[value, at]];
  while (stack.length) {
    const [v, path] = stack.pop() as [unknown, string];
    if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    else if (isObject(v))
      for (const [k, child] of Object.entries(v)) {
        if (names.has(k) && child !== null && child !== undefined) return `${path}.${k}`;
        stack.push([child, `${path}.${k}`]);
      }
  }
  return null;
}

// What refers to the upstream account's own stores (its files, vector stores, containers,
// conversations, prompts, stored items): a caller here must not reach them.
const STORED = new Set(['file_id', 'vector_store_ids', 'container', 'conversation', 'prompt']);

/**
 * What is passed on is what can be billed, and nothing of the upstream account's own: hosted
 * tools (their per-call fees are not in the usage), stored objects by id, other service tiers
 * (priced differently) and background runs (which need storing) are a 400 that says so.
 */
function refuseUnbillable(body: ResponsesRequest): void {
  refuseStored(body);
  for (const [i, tool] of (body.tools ?? []).entries()) {
    if (!isObject(tool) || tool.type !== 'function') {
      throw refused(
        `tools[${i}].type`,
        'Only function tools are served here: hosted tools (web search, file search, code interpreter …) have fees this server does not bill.',
      );
    }
  }
  const ref = Array.isArray(body.input) ? body.input.findIndex((item) => isObject(item) && item.type === 'item_reference') : -1;
  if (ref >= 0)
    throw refused(
      `input[${ref}].type`,
      'An item_reference needs responses stored by the server, which this server does not do: send the items themselves.',
    );
  const stored = findField({ input: body.input, conversation: body.conversation, prompt: body.prompt }, STORED, 'body');
  if (stored)
    throw refused(
      stored.replace(/^body\./, ''),
      'Stored objects (files, vector stores, containers, conversations, prompts) are not reachable through this server: send the content itself.',
    );
  if (body.service_tier != null && body.service_tier !== 'auto' && body.service_tier !== 'default') {
    throw refused('service_tier', 'Only the default service tier is served here.');
  }
  if (body.background === true) throw refused('background', 'Background responses need storing, which this server does not do.');
}

/** The request as chat completions, for its limits: translated, or its text when it cannot be. */
function asChat(body: ResponsesRequest) {
  refuseUnbillable(body);
  try {
    return toChatRequest(body);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // Reasoning items, file inputs … are the upstream's to read; their JSON text counts at least
    // as many tokens as the model will read of most of them (and the hold covers the whole context).
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
    // What the upstream reads (files, reasoning items) may be more than the request's text shows.
    holdsWholeContext: true,
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
      // Every delta is output the model produced (text, refusals, arguments, reasoning, code …).
      if (typeof event.delta === 'string' && event.type.endsWith('.delta')) tally.add(event.delta);
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
 * held back until the bill is known and then sent with our cost in its usage; every event
 * numbered in the order it is sent.
 */
function passedOn(id: string, model: string, ours: (r: ResponseBody) => ResponseBody): StreamEncoder<ResponsesEvent> {
  // Numbered here, in the order sent: the upstream's numbers are its own.
  let next = 0;
  let last: ResponsesEvent | undefined;
  const send = (sse: SseWriter, event: ResponsesEvent) => {
    event.sequence_number = next++;
    return sse.send(event, event.type);
  };
  const bare = (status: string): ResponseBody => ({ id, object: 'response', model, status, output: [], usage: null });
  return {
    chunk(sse, event) {
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
