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
export const GenerationQuery = Type.Object({ id: Type.String({ minLength: 1 }) });
