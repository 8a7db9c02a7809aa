// The usage capability's HTTP shapes: one request's record (GET /v1/generation and the dashboard
// give the same view) and the dashboard's usage page. The web app's types come from these too.
import { Type } from 'typebox';
import { Cents, KeyMode, Nullable } from '../http/schema-parts.ts';

export const GenerationView = Type.Object(
  {
    object: Type.Literal('generation'),
    id: Type.String({ description: 'The chat completion id (chatcmpl-…) this request answered with' }),
    request_id: Type.String({ description: 'The x-request-id of the request' }),
    created: Type.Integer({ description: 'Unix seconds' }),
    model: Type.String(),
    backend: Type.String(),
    mode: KeyMode,
    key_id: Type.String(),
    stream: Type.Boolean(),
    status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]),
    http_status: Type.Integer(),
    finish_reason: Nullable(Type.String()),
    error_code: Nullable(Type.String()),
    latency_ms: Type.Integer(),
    usage: Type.Object({
      prompt_tokens: Type.Integer(),
      completion_tokens: Type.Integer(),
      total_tokens: Type.Integer(),
      cost_cents: Cents,
      cost_micros: Type.Integer({ description: 'The exact charge in micro-dollars' }),
      held_cents: Cents,
    }),
  },
  { title: 'Generation' },
);
export const DailyUsage = Type.Object({
  date: Type.String({ description: 'YYYY-MM-DD (UTC)' }),
  requests: Type.Integer(),
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  cost_cents: Cents,
});
export const UsageView = Type.Object({
  daily: Type.Array(DailyUsage),
  recent: Type.Array(GenerationView),
  keys: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      preview: Type.String(),
      mode: KeyMode,
    }),
  ),
  models: Type.Array(Type.String()),
});
export const UsageQuery = Type.Object({
  days: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
  key_id: Type.Optional(Type.String()),
  model: Type.Optional(Type.String()),
});
export const GenerationParams = Type.Object({ id: Type.String() });
export const GenerationQuery = Type.Object({ id: Type.String({ minLength: 1 }) });
