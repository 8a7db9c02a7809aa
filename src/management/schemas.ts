// The management API's HTTP shapes.
import { Type } from 'typebox';
import { AccountView } from '../accounts/schemas.ts';
import { GrantResult, IDEMPOTENCY_KEY_PATTERN } from '../billing/schemas.ts';
import { KeyMode, Nullable } from '../http/schema-parts.ts';
import { ApiKeyView, KeyLimitsChange } from '../keys/schemas.ts';

export const ManagedKey = Type.Object({ ...ApiKeyView.properties, account_id: Type.String() }, { title: 'ManagedKey' });
export const ManagedKeyList = Type.Object({ data: Type.Array(ManagedKey) });
export const CreatedManagedKey = Type.Object({
  ...ManagedKey.properties,
  key: Type.String({ description: 'The full key: in this response only.' }),
});

export const NewManagedKey = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  mode: Type.Optional(KeyMode),
  ...KeyLimitsChange.properties,
});
export const KeyChange = KeyLimitsChange;
export const Rotation = Type.Object({
  grace_seconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 30 * 86_400,
      description: 'How long the former secret keeps working (default 86400; 0: not at all)',
    }),
  ),
});
export const Rotated = Type.Object({ id: Type.String(), key: Type.String(), previous_valid_until: Nullable(Type.Integer()) });

export const NewManagedAccount = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  name: Type.Optional(Type.String({ maxLength: 100 })),
});
export const ManagedAccountList = Type.Object({ data: Type.Array(AccountView), next_after: Nullable(Type.String()) });
export const AccountListQuery = Type.Object({
  after: Type.Optional(Type.String({ maxLength: 100 })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
});

export const Credit = Type.Object({
  cents: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
});
export const CreditHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description: 'Required: the same key again answers with the first grant and grants nothing.',
    }),
  ),
});
export const CreditResult = Type.Object({ ...GrantResult.properties, replayed: Type.Boolean() });

export const UsageQuery = Type.Object({
  account_id: Type.Optional(Type.String({ maxLength: 100 })),
  key_id: Type.Optional(Type.String({ maxLength: 100 })),
  model: Type.Optional(Type.String({ maxLength: 200 })),
  from: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Unix milliseconds (default: 30 days ago)' })),
  to: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Unix milliseconds, exclusive (default: now)' })),
});
export const UsageRows = Type.Object({
  data: Type.Array(
    Type.Object({
      day: Type.String({ description: 'UTC date, YYYY-MM-DD' }),
      account_id: Type.String(),
      key_id: Type.String(),
      model: Type.String(),
      requests: Type.Integer(),
      prompt_tokens: Type.Integer(),
      completion_tokens: Type.Integer(),
      cost_cents: Type.Number(),
    }),
  ),
});
export const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
