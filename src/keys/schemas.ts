// The keys capability's HTTP shapes (dashboard API); the web app's types come from these too.
import { Type } from 'typebox';
import { KeyMode, Nullable } from '../http/schema-parts.ts';
import { MAX_KEY_NAME } from './key-name.ts';

const Limit = Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000_000 }));
const SpendPeriodSchema = Type.Union([Type.Literal('day'), Type.Literal('month'), Type.Literal('total')]);

/** A key's limits as every surface shows them (null: none). */
export const KeyLimitsView = Type.Object(
  {
    rpm: Limit,
    tpm: Limit,
    max_concurrency: Limit,
    spend_limit_cents: Limit,
    spend_period: Nullable(SpendPeriodSchema),
    models: Nullable(Type.Array(Type.String())),
  },
  { title: 'KeyLimitSettings' },
);

/** A change of limits: only the fields given change; null clears one. */
export const KeyLimitsChange = Type.Object({
  rpm: Type.Optional(Limit),
  tpm: Type.Optional(Limit),
  max_concurrency: Type.Optional(Limit),
  spend_limit_cents: Type.Optional(Limit),
  spend_period: Type.Optional(Nullable(SpendPeriodSchema)),
  models: Type.Optional(Nullable(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 100 }))),
  expires_at: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 0, maximum: 253_402_300_799_999, description: 'Unix milliseconds (before the year 10000); null: never' }),
    ),
  ),
});

export const ApiKeyView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    preview: Type.String({ description: 'The first 12 and last 4 characters; the full key is never shown again after creation.' }),
    mode: KeyMode,
    created_at: Type.Integer({ description: 'Unix milliseconds' }),
    last_used_at: Nullable(Type.Integer()),
    revoked_at: Nullable(Type.Integer()),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]),
    expires_at: Nullable(Type.Integer({ description: 'Unix milliseconds; null: never' })),
    previous_valid_until: Nullable(Type.Integer({ description: 'After a rotation: until when the former secret works' })),
    limits: KeyLimitsView,
    notices: Type.Array(Type.Union([Type.Literal('expiring'), Type.Literal('rotating'), Type.Literal('unused')]), {
      description: 'expiring: within 7 days; rotating: the former secret still works; unused: not used for 30 days (revoke it?)',
    }),
  },
  { title: 'ApiKey' },
);
export const KeyList = Type.Object({ data: Type.Array(ApiKeyView) });
export const CreatedKey = Type.Object({
  ...ApiKeyView.properties,
  key: Type.String({ description: 'The full key: in this response only.' }),
});
export const CreateKey = Type.Object({
  name: Type.String({ maxLength: MAX_KEY_NAME * 2 }),
  mode: Type.Optional(KeyMode),
  ...KeyLimitsChange.properties,
});
export const RotateKey = Type.Object({
  grace_seconds: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 30 * 86_400, description: 'How long the former secret keeps working (default 86400)' }),
  ),
});
export const RotatedKey = Type.Object({
  ...ApiKeyView.properties,
  key: Type.String({ description: 'The new secret: in this response only.' }),
});
export const KeyParams = Type.Object({ id: Type.String() });
