// What a chat request may ask for, decided before anything is held: max_tokens within the
// model's cap, the prompt within its context window (counted in slices, up to that window), and
// what the backend is then asked.
import type { ChatRequest } from '../backends/backend.ts';
import type { ModelRoute } from '../backends/model-registry.ts';
import { ApiError } from '../errors.ts';
import { countPromptTokensWithin } from '../lib/tokens.ts';

/**
 * maxOutput is what the hold covers: the output cap of one choice (perChoice) times the choices
 * asked for (n). The prompt is billed once, whatever n is.
 */
export type ChatLimits = { maxOutput: number; perChoice: number; promptTokens: number };

/** What the request's fields are called in the API it came in by (the Responses API's differ). */
export type LimitParams = { output: string; prompt: string };

export async function checkLimits(body: ChatRequest, route: ModelRoute, names?: LimitParams): Promise<ChatLimits> {
  const param = names?.output ?? (body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens');
  const requested = body.max_completion_tokens ?? body.max_tokens ?? null;
  const cap = route.model.max_output_tokens;
  if (requested !== null && requested > cap) {
    throw new ApiError('invalid_request', {
      param,
      message: `${param} is too large: ${requested}. The model ${route.model.id} produces at most ${cap} tokens.`,
    });
  }
  // Counted only up to the context window: past it the answer is the same whatever the rest holds.
  const promptTokens = await countPromptTokensWithin(body, route.model.context_window);
  if (promptTokens > route.model.context_window) {
    throw new ApiError('invalid_request', {
      param: names?.prompt ?? 'messages',
      publicCode: 'context_length_exceeded',
      message: `The ${names?.prompt ?? 'messages'} ha${names ? 's' : 've'} more than ${route.model.context_window} tokens, which is all the model ${route.model.id} accepts.`,
    });
  }
  const perChoice = requested ?? cap;
  const n = typeof body.n === 'number' && body.n > 1 ? body.n : 1;
  return { maxOutput: perChoice * n, perChoice, promptTokens };
}

/**
 * What the backend is asked: its own model name, usage in streams, and exactly one output limit,
 * the one the hold covers, in the field the model's upstream wants (whichever field the client
 * used: an upstream ignores the one it does not know, and would then write past the hold).
 */
export function upstreamRequest(body: ChatRequest, route: ModelRoute, perChoice: number, stream: boolean): ChatRequest {
  const field = route.model.max_tokens_field;
  const other = field === 'max_tokens' ? 'max_completion_tokens' : 'max_tokens';
  // A copy with the limit written over the client's (a number over a number), and the other field
  // set to undefined (JSON leaves it out) only when the client sent it: deleting a property makes
  // the object slow to serialise, a rest copy is many times slower than a spread, and writing
  // undefined over a number changes the object's shape on every request.
  const req: ChatRequest = { ...body, model: route.model.upstream_model ?? route.model.id };
  req[field] = perChoice;
  if (req[other] !== undefined) req[other] = undefined;
  if (stream) req.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
  return req;
}
