// The billing capability's HTTP shapes (dashboard API); the web app's types come from these too.
import { Type } from 'typebox';
import { AccountView } from '../accounts/schemas.ts';
import { Cents, Nullable } from '../http/schema-parts.ts';

export const LedgerEntryView = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('grant'), Type.Literal('usage'), Type.Literal('release'), Type.Literal('adjustment')]),
    amount_cents: Cents,
    balance_after_cents: Cents,
    held_cents: Nullable(Cents),
    released_cents: Nullable(Cents),
    request_id: Nullable(Type.String()),
    reason: Nullable(Type.String()),
    created_at: Type.Integer({ description: 'Unix milliseconds' }),
  },
  { title: 'LedgerEntry' },
);
export const BillingView = Type.Object({
  account: AccountView,
  entries: Type.Array(LedgerEntryView),
  next_before: Nullable(Type.String({ description: 'Pass as `before` for the next (older) page.' })),
});
export const LedgerQuery = Type.Object({
  before: Type.Optional(Type.String()),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
});
export const Grant = Type.Object({
  account: Type.String({ minLength: 1, description: 'Account id or email' }),
  cents: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
});
/** Printable ASCII, up to 255 characters: a UUID, or whatever a client retries with. */
export const IDEMPOTENCY_KEY_PATTERN = '^[ -~]{1,255}$';
export const GrantHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ pattern: IDEMPOTENCY_KEY_PATTERN, description: 'The same key again answers with the first grant and grants nothing.' }),
  ),
});
export const GrantResult = Type.Object({
  account_id: Type.String(),
  granted_cents: Cents,
  balance_cents: Type.Integer(),
});
