// Request schemas of the /v1 routes. They validate (wrong types become a 400 with `param`),
// type the handlers, and document the API. Unknown fields of a chat request are kept and passed
// on to the backend, as OpenAI-compatible gateways do.
import { Type } from 'typebox';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

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
    stream: Type.Optional(nullable(Type.Boolean())),
    stream_options: Type.Optional(
      nullable(Type.Object({ include_usage: Type.Optional(nullable(Type.Boolean())) }, { additionalProperties: true })),
    ),
    max_tokens: Type.Optional(nullable(Type.Integer({ minimum: 1 }))),
    max_completion_tokens: Type.Optional(nullable(Type.Integer({ minimum: 1 }))),
    n: Type.Optional(nullable(Type.Integer({ minimum: 1, maximum: 1 }))),
    temperature: Type.Optional(nullable(Type.Number({ minimum: 0, maximum: 2 }))),
    top_p: Type.Optional(nullable(Type.Number({ minimum: 0, maximum: 1 }))),
    tools: Type.Optional(nullable(Type.Array(Type.Object({ type: Type.String() }, { additionalProperties: true })))),
    response_format: Type.Optional(nullable(Type.Object({ type: Type.String() }, { additionalProperties: true }))),
    user: Type.Optional(nullable(Type.String())),
  },
  { additionalProperties: true },
);

export const ModelParams = Type.Object({ id: Type.String() });

const Cents = Type.Number({ description: 'US cents, to 4 decimal places' });

export const ModelObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    context_window: Type.Integer(),
    max_output_tokens: Type.Integer(),
    pricing: Type.Object({ input_per_million_cents: Cents, output_per_million_cents: Cents, request_cents: Cents }),
  },
  { title: 'Model' },
);
export const ModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelObject) });

export const KeyInfo = Type.Object(
  {
    object: Type.Literal('api_key'),
    id: Type.String(),
    name: Type.String(),
    mode: Type.Union([Type.Literal('live'), Type.Literal('test')]),
    preview: Type.String(),
    created: Type.Integer({ description: 'Unix seconds' }),
    last_used: Type.Union([Type.Integer(), Type.Null()]),
    expires_at: Type.Union([Type.Integer(), Type.Null()]),
    limits: Type.Object({ rate_limit: Type.Null(), spend_limit_cents: Type.Null() }),
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
          message: Type.Object({ role: Type.String(), content: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: true }),
          finish_reason: Type.Union([Type.String(), Type.Null()]),
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
