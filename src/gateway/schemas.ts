// Request schemas of the /v1 routes. They validate (wrong types become a 400 with `param`),
// type the handlers, and document the API. Unknown fields of a chat request are kept and passed
// on to the backend, as OpenAI-compatible gateways do.
import { Type } from 'typebox';
import { Cents, KeyMode, Nullable } from '../http/schema-parts.ts';

const Message = Type.Object(
  {
    role: Type.String({ minLength: 1 }),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Object({}, { additionalProperties: true })), Type.Null()])),
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export const ChatBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(Message, { minItems: 1 }),
    stream: Type.Optional(Nullable(Type.Boolean())),
    stream_options: Type.Optional(
      Nullable(Type.Object({ include_usage: Type.Optional(Nullable(Type.Boolean())) }, { additionalProperties: true })),
    ),
    max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    max_completion_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    n: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 128 }))),
    temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2 }))),
    top_p: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1 }))),
    tools: Type.Optional(Nullable(Type.Array(Type.Object({ type: Type.String() }, { additionalProperties: true })))),
    response_format: Type.Optional(Nullable(Type.Object({ type: Type.String() }, { additionalProperties: true }))),
    user: Type.Optional(Nullable(Type.String())),
  },
  { additionalProperties: true },
);

export const ModelParams = Type.Object({ id: Type.String() });
/** The rest of the path: a model id with slashes in it. */
export const ModelPathParams = Type.Object({ '*': Type.String() });

export const ModelObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    kind: Type.Union([Type.Literal('chat'), Type.Literal('embedding')], {
      description: 'chat: /v1/chat/completions; embedding: /v1/embeddings',
    }),
    dimensions: Type.Optional(Type.Integer({ description: "An embedding model's vector length (the most `dimensions` may ask for)" })),
    context_window: Type.Integer(),
    max_output_tokens: Type.Integer(),
    pricing: Type.Object({ input_per_million_cents: Cents, output_per_million_cents: Cents, request_cents: Cents }),
  },
  { title: 'Model' },
);
export const ModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelObject) });

const Count = Nullable(Type.Integer({ minimum: 1 }));
export const KeyLimitsInfo = Type.Object(
  {
    rate_limit: Nullable(
      Type.Object({
        requests_per_minute: Count,
        tokens_per_minute: Count,
        max_concurrency: Count,
        remaining_requests: Nullable(Type.Integer()),
        remaining_tokens: Nullable(Type.Integer()),
        in_flight: Type.Integer(),
        reset_seconds: Type.Number({ description: 'Until the current one-minute window ends' }),
      }),
    ),
    spend_limit_cents: Nullable(Type.Integer()),
    spend_period: Nullable(Type.Union([Type.Literal('day'), Type.Literal('month'), Type.Literal('total')])),
    spend_remaining_cents: Nullable(
      Type.Integer({ description: 'Of the spend limit, in the current period: what it spent and holds taken off, rounded down' }),
    ),
    models: Nullable(Type.Array(Type.String(), { description: 'The models the key may call; null: every model' })),
  },
  { title: 'KeyLimits' },
);

export const KeyInfo = Type.Object(
  {
    object: Type.Literal('api_key'),
    id: Type.String(),
    name: Type.String(),
    mode: KeyMode,
    preview: Type.String(),
    created: Type.Integer({ description: 'Unix seconds' }),
    last_used: Nullable(Type.Integer()),
    expires_at: Nullable(Type.Integer()),
    limits: KeyLimitsInfo,
    account: Type.Object({ id: Type.String(), balance_cents: Type.Integer(), available_balance_cents: Type.Integer() }),
  },
  { title: 'Key' },
);

const Usage = Type.Object(
  {
    prompt_tokens: Type.Integer(),
    completion_tokens: Type.Integer(),
    total_tokens: Type.Integer(),
    cost_cents: Type.Optional(Cents),
  },
  { additionalProperties: true },
);
/** Documents the answer; it is sent as the backend produced it, with our id, model and cost (not re-serialised). */
export const ChatCompletion = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('chat.completion'),
    created: Type.Integer(),
    model: Type.String(),
    choices: Type.Array(
      Type.Object(
        {
          index: Type.Integer(),
          message: Type.Object({ role: Type.String(), content: Nullable(Type.String()) }, { additionalProperties: true }),
          finish_reason: Nullable(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
    usage: Usage,
  },
  {
    title: 'ChatCompletion',
    additionalProperties: true,
    description:
      'With `stream: true` the answer is `text/event-stream`: `data: <chat.completion.chunk>` events, the last (with `stream_options.include_usage`) carrying usage and cost_cents, then `data: [DONE]`; a failure after the first event is a `data: {"error": …}` event.',
  },
);

const TokenArray = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });
/** OpenAI's limit on the inputs of one embeddings request. */
export const MAX_EMBEDDING_INPUTS = 2048;

export const EmbeddingsBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    input: Type.Union(
      [
        Type.String({ minLength: 1 }),
        Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
        TokenArray,
        Type.Array(TokenArray, { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
      ],
      { description: 'A string, up to 2,048 strings, a token array, or up to 2,048 token arrays' },
    ),
    dimensions: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    encoding_format: Type.Optional(Nullable(Type.Union([Type.Literal('float'), Type.Literal('base64')]))),
    user: Type.Optional(Nullable(Type.String())),
  },
  { additionalProperties: true },
);

/** Documents the answer; it is sent as the backend made it, with the model as named and the cost. */
export const EmbeddingListSchema = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(
      Type.Object({
        object: Type.Literal('embedding'),
        index: Type.Integer(),
        embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'little-endian float32, base64' })]),
      }),
    ),
    model: Type.String(),
    usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer(), cost_cents: Cents }),
  },
  { title: 'EmbeddingList' },
);

export const ResponsesBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    input: Type.Union([Type.String(), Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1 })], {
      description: 'A string, or input items: messages (input_text / input_image parts), function_call and function_call_output items',
    }),
    instructions: Type.Optional(Nullable(Type.String())),
    tools: Type.Optional(Nullable(Type.Array(Type.Object({ type: Type.String() }, { additionalProperties: true })))),
    tool_choice: Type.Optional(Nullable(Type.Union([Type.String(), Type.Object({ type: Type.String() }, { additionalProperties: true })]))),
    text: Type.Optional(
      Nullable(
        Type.Object(
          { format: Type.Optional(Type.Object({ type: Type.String() }, { additionalProperties: true })) },
          { additionalProperties: true },
        ),
      ),
    ),
    max_output_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2 }))),
    top_p: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1 }))),
    parallel_tool_calls: Type.Optional(Nullable(Type.Boolean())),
    metadata: Type.Optional(Nullable(Type.Record(Type.String(), Type.String()))),
    stream: Type.Optional(Nullable(Type.Boolean())),
    store: Type.Optional(Nullable(Type.Boolean({ description: 'Responses are not stored: true is a 400' }))),
    previous_response_id: Type.Optional(Nullable(Type.String({ description: 'Not supported (responses are not stored): a 400' }))),
    user: Type.Optional(Nullable(Type.String())),
  },
  { additionalProperties: true },
);

/** Documents the answer (sent as made, not re-serialised). */
export const ResponseSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('response'),
    created_at: Type.Integer(),
    status: Type.String({ description: 'completed, incomplete (max_output_tokens) or failed' }),
    model: Type.String(),
    output: Type.Array(Type.Object({ type: Type.String(), id: Type.String() }, { additionalProperties: true })),
    usage: Nullable(
      Type.Object(
        { input_tokens: Type.Integer(), output_tokens: Type.Integer(), total_tokens: Type.Integer(), cost_cents: Cents },
        { additionalProperties: true },
      ),
    ),
  },
  {
    title: 'Response',
    additionalProperties: true,
    description:
      'With `stream: true` the answer is `text/event-stream` of named events: response.created, response.in_progress, response.output_item.added, response.content_part.added, response.output_text.delta …, response.function_call_arguments.delta …, their .done events, then response.completed (or response.incomplete) carrying usage and cost_cents; a failure after the first event is an `error` event and response.failed.',
  },
);
