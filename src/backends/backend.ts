// The one interface every model backend implements. The gateway hands a backend an
// OpenAI-shaped request (model already renamed to the backend's own name) and gets back either
// a complete JSON body or a stream of chunks. A backend reports failures by throwing ApiError;
// before the first chunk that becomes the HTTP status, after it an error event in the stream.
// What a backend returns is well-formed, whatever its upstream sent: every choice is an object
// (with a message, or a delta), and usage is null or two non-negative safe integers
// (upstream-answer.ts checks an upstream's answer), so the gateway may bill from it as it is.

export type ChatMessage = { role: string; content?: unknown; [k: string]: unknown };

export type ChatRequest = {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null; [k: string]: unknown } | null;
  // undefined: not sent (JSON leaves it out).
  max_tokens?: number | null | undefined;
  max_completion_tokens?: number | null | undefined;
  response_format?: { type?: string; [k: string]: unknown } | null;
  [k: string]: unknown;
};

export type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number; [k: string]: unknown };

export type ChatCompletion = {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: string; content: string | null; [k: string]: unknown };
    finish_reason: string | null;
    [k: string]: unknown;
  }>;
  usage?: Usage | null;
  [k: string]: unknown;
};

export type ChatChunk = {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string | null; [k: string]: unknown };
    finish_reason: string | null;
    [k: string]: unknown;
  }>;
  usage?: Usage | null | undefined;
  [k: string]: unknown;
};

export type BackendResult = { kind: 'json'; body: ChatCompletion } | { kind: 'stream'; chunks: AsyncIterable<ChatChunk> };

export type BackendCall = {
  request: ChatRequest;
  stream: boolean;
  /** Aborted when the client goes away or the request runs out of time. */
  signal: AbortSignal;
  /** The prompt's tokens as the gateway counted them (the simulator reports them as usage). */
  promptTokens?: number;
};

/** An embeddings request as the backend gets it (model renamed to the backend's own name). */
export type EmbeddingRequest = {
  model: string;
  input: string | string[] | number[] | number[][];
  dimensions?: number | null;
  encoding_format?: 'float' | 'base64' | null;
  [k: string]: unknown;
};

/** The inputs of a request as a list: a string, strings, a token array, or token arrays. */
export function inputsOf(input: EmbeddingRequest['input']): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && input.every((x) => typeof x === 'number')) return [input as number[]];
  return input as (string | number[])[];
}

export type Embedding = { object: 'embedding'; index: number; embedding: number[] | string; [k: string]: unknown };

/** An embeddings answer: one embedding per input, in the encoding asked for; usage null when the backend did not count. */
export type EmbeddingList = {
  object: 'list';
  data: Embedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number } | null;
  [k: string]: unknown;
};

export type EmbedCall = {
  request: EmbeddingRequest;
  signal: AbortSignal;
  /** The inputs' tokens as the gateway counted them (the simulator reports them as usage). */
  inputTokens: number;
  /** The vector length to make (the request's dimensions, else the model's). */
  dimensions: number;
};

/** A Responses API request as a Responses-capable upstream gets it (model renamed to its own name). */
export type ResponsesCall = { request: Record<string, unknown>; stream: boolean; signal: AbortSignal };

/** Usage in the Responses API's shape: both counts plain token counts. */
export type ResponsesUsage = { input_tokens: number; output_tokens: number; total_tokens: number; [k: string]: unknown };

/** A Response object as the upstream made it: its output a list, its usage null unless well-formed. */
export type ResponseBody = { output: unknown[]; usage: ResponsesUsage | null; status?: unknown; [k: string]: unknown };

/** One Responses API stream event: its type, and (for the response.* lifecycle events) the response so far. */
export type ResponsesEvent = { type: string; response?: ResponseBody; [k: string]: unknown };

export type ResponsesResult = { kind: 'json'; body: ResponseBody } | { kind: 'stream'; events: AsyncIterable<ResponsesEvent> };

export interface ChatBackend {
  /** What serves the model, for logs and usage records: `simulator` or `openai-compatible`. */
  readonly kind: 'simulator' | 'openai-compatible';
  /** Human description for the start-up log; never contains a secret. */
  describe(): string;
  chat(call: BackendCall): Promise<BackendResult>;
  /** Embeddings, for models of kind `embedding`. */
  embed(call: EmbedCall): Promise<EmbeddingList>;
  /** The Responses API asked in its own terms, for upstreams that serve it (a model's `responses_api`). */
  responses?(call: ResponsesCall): Promise<ResponsesResult>;
  close?(): Promise<void>;
}
