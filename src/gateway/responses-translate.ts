// The Responses API over chat completions, which every backend speaks: a Responses request made
// into a chat request (instructions, input items, function tools, tool_choice, text.format,
// max_output_tokens), and a chat answer made into a Response object (message and function_call
// output items, usage with our cost). Responses are not stored: `store: true`,
// `previous_response_id` and item references get a 400 that says so. Linear in the input.
import type { ChatCompletion, ChatMessage, ChatRequest, Usage } from '../backends/backend.ts';
import { ApiError } from '../errors.ts';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export type ResponsesRequest = {
  model: string;
  input: string | unknown[];
  instructions?: string | null;
  tools?: unknown[] | null;
  tool_choice?: unknown;
  text?: { format?: Obj; [k: string]: unknown } | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  parallel_tool_calls?: boolean | null;
  metadata?: Record<string, string> | null;
  stream?: boolean | null;
  store?: boolean | null;
  previous_response_id?: string | null;
  user?: string | null;
  [k: string]: unknown;
};

const notStored = (param: string, what: string) =>
  new ApiError('invalid_request', {
    param,
    message: `${what} needs responses stored by the server, which this server does not do: send the whole conversation as input items (and store: false).`,
  });

const unsupported = (param: string, message: string) => new ApiError('invalid_request', { param, message });

/** Text of content parts, for roles whose chat content is a string. */
function textOfParts(parts: unknown[]): string {
  let text = '';
  for (const p of parts) {
    if (!isObject(p)) continue;
    if (typeof p.text === 'string') text += p.text;
    else if (typeof p.refusal === 'string') text += p.refusal;
  }
  return text;
}

/** A user message's content parts in chat's shape: text and images. */
function userParts(parts: unknown[], at: string): unknown[] {
  return parts.map((p, i) => {
    if (!isObject(p)) throw unsupported(`${at}[${i}]`, 'A content part must be an object.');
    if (p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') return { type: 'text', text: String(p.text ?? '') };
    if (p.type === 'input_image') {
      if (typeof p.image_url !== 'string')
        throw unsupported(`${at}[${i}]`, 'An input_image needs an image_url (file ids are not supported).');
      return { type: 'image_url', image_url: { url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) } };
    }
    throw unsupported(`${at}[${i}].type`, `Content parts of type '${String(p.type)}' are not supported; use input_text or input_image.`);
  });
}

function messagesOf(body: ResponsesRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (typeof body.instructions === 'string' && body.instructions) messages.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') {
    messages.push({ role: 'user', content: body.input });
    return messages;
  }
  for (const [i, item] of body.input.entries()) {
    const at = `input[${i}]`;
    if (!isObject(item)) throw unsupported(at, 'An input item must be an object.');
    const type = item.type ?? 'message';
    if (type === 'message') {
      const role = item.role === 'developer' ? 'system' : item.role;
      if (role !== 'user' && role !== 'assistant' && role !== 'system')
        throw unsupported(`${at}.role`, `Unknown role '${String(item.role)}'.`);
      const content = item.content;
      if (typeof content === 'string') messages.push({ role, content });
      else if (Array.isArray(content))
        messages.push({ role, content: role === 'user' ? userParts(content, `${at}.content`) : textOfParts(content) });
      else throw unsupported(`${at}.content`, 'A message needs content: a string or content parts.');
    } else if (type === 'function_call') {
      const call = {
        id: String(item.call_id ?? item.id ?? ''),
        type: 'function',
        function: { name: String(item.name ?? ''), arguments: String(item.arguments ?? '') },
      };
      const last = messages.at(-1);
      // Calls made in one turn are one assistant message with several tool calls.
      if (last?.role === 'assistant' && Array.isArray(last.tool_calls)) (last.tool_calls as unknown[]).push(call);
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      const output = item.output;
      messages.push({
        role: 'tool',
        tool_call_id: String(item.call_id ?? ''),
        content: typeof output === 'string' ? output : Array.isArray(output) ? textOfParts(output) : JSON.stringify(output ?? ''),
      });
    } else if (type === 'reasoning') {
      // A reasoning model's own notes: chat completions have nowhere to put them.
    } else if (type === 'item_reference') {
      throw notStored(`${at}.type`, 'An item_reference');
    } else {
      throw unsupported(`${at}.type`, `Input items of type '${String(type)}' are not supported.`);
    }
  }
  return messages;
}

function toolsOf(tools: unknown[]): unknown[] {
  return tools.map((t, i) => {
    if (!isObject(t) || t.type !== 'function') {
      throw unsupported(`tools[${i}].type`, `Only function tools are supported here (not '${isObject(t) ? String(t.type) : typeof t}').`);
    }
    return {
      type: 'function',
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.parameters ?? { type: 'object', properties: {} },
        ...(t.strict !== undefined && t.strict !== null ? { strict: t.strict } : {}),
      },
    };
  });
}

function toolChoiceOf(choice: unknown): unknown {
  if (isObject(choice) && choice.type === 'function') return { type: 'function', function: { name: choice.name } };
  return choice;
}

function responseFormatOf(format: Obj | undefined): ChatRequest['response_format'] {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    return {
      type: 'json_schema',
      json_schema: {
        name: format.name ?? 'response',
        schema: format.schema ?? {},
        ...(format.description !== undefined ? { description: format.description } : {}),
        ...(format.strict !== undefined && format.strict !== null ? { strict: format.strict } : {}),
      },
    };
  }
  throw unsupported('text.format.type', `Unknown text format '${String(format.type)}'.`);
}

/** Responses are not stored, by any backend: asking for it, or for a stored one, is a 400. */
export function refuseStored(body: ResponsesRequest): void {
  if (body.store === true) throw notStored('store', 'store: true');
  if (body.previous_response_id) throw notStored('previous_response_id', 'previous_response_id');
}

/** The chat request a Responses request asks for. */
export function toChatRequest(body: ResponsesRequest): ChatRequest {
  refuseStored(body);
  const req: ChatRequest = { model: body.model, messages: messagesOf(body) };
  if (!req.messages.length) throw unsupported('input', 'The input has no messages.');
  if (body.tools?.length) req.tools = toolsOf(body.tools);
  if (body.tool_choice !== undefined && body.tool_choice !== null) req.tool_choice = toolChoiceOf(body.tool_choice);
  const format = responseFormatOf(body.text?.format);
  if (format) req.response_format = format;
  if (body.max_output_tokens != null) req.max_completion_tokens = body.max_output_tokens;
  for (const k of ['temperature', 'top_p', 'parallel_tool_calls', 'user'] as const) if (body[k] != null) req[k] = body[k];
  if (body.stream) req.stream = true;
  return req;
}

export const responseIdFor = (requestId: string): string => `resp_${requestId.slice('req_'.length)}`;

export type ResponseUsage = {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
  cost_cents: number;
};

export const responseUsage = (u: Usage & { cost_cents: number }): ResponseUsage => ({
  input_tokens: u.prompt_tokens,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: u.completion_tokens,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: u.prompt_tokens + u.completion_tokens,
  cost_cents: u.cost_cents,
});

export type OutputItem = Obj & { type: 'message' | 'function_call'; id: string };

/** Status and reason of a response, from how the model finished. */
export function statusOf(finishReason: string | null): {
  status: 'completed' | 'incomplete';
  incomplete_details: { reason: string } | null;
} {
  if (finishReason === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

/** A Response object: the request's settings echoed, its output items, status and usage. */
export function responseObject(
  id: string,
  body: ResponsesRequest,
  created: number,
  state: { status: string; incomplete_details?: unknown; error?: unknown; output: OutputItem[]; usage: ResponseUsage | null },
) {
  return {
    id,
    object: 'response',
    created_at: created,
    status: state.status,
    error: state.error ?? null,
    incomplete_details: state.incomplete_details ?? null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output: state.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    store: false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: 'disabled',
    usage: state.usage,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

export const messageItem = (id: string, text: string, status: string): OutputItem => ({
  type: 'message',
  id,
  status,
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [] }],
});

export const functionCallItem = (id: string, callId: string, name: string, args: string, status: string): OutputItem => ({
  type: 'function_call',
  id,
  call_id: callId,
  name,
  arguments: args,
  status,
});

/** The output items of a complete chat answer (its first choice: a response has one). */
export function outputOf(answer: ChatCompletion, requestId: string): OutputItem[] {
  const message = answer.choices[0]?.message;
  if (!message) return [];
  const suffix = requestId.slice('req_'.length);
  const items: OutputItem[] = [];
  const text = typeof message.content === 'string' ? message.content : '';
  const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as unknown[]).filter(isObject) : [];
  if (typeof message.refusal === 'string' && message.refusal) {
    items.push({
      type: 'message',
      id: `msg_${suffix}`,
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'refusal', refusal: message.refusal }],
    });
  } else if (text || !calls.length) items.push(messageItem(`msg_${suffix}`, text, 'completed'));
  for (const [i, tc] of calls.entries()) {
    const fn = isObject(tc.function) ? tc.function : {};
    items.push(functionCallItem(`fc_${suffix}_${i}`, String(tc.id ?? ''), String(fn.name ?? ''), String(fn.arguments ?? ''), 'completed'));
  }
  return items;
}
