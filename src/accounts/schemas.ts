// The accounts capability's HTTP shapes (dashboard API); the web app's types come from these too.
import { Type } from 'typebox';
import { Nullable, Role } from '../http/schema-parts.ts';

export const AccountView = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    name: Nullable(Type.String()),
    role: Role,
    balance_cents: Type.Number({ description: 'Whole cents; the balance is kept in micro-dollars.' }),
    available_cents: Type.Number({ description: 'The balance less what requests in flight hold.' }),
    held_cents: Type.Number(),
    created_at: Type.Integer({ description: 'Unix milliseconds' }),
  },
  { title: 'Account' },
);
export const SignedIn = Type.Object({ account: AccountView });
export const MaybeSignedIn = Type.Object({ account: Nullable(AccountView) });
export const SessionView = Type.Object({
  account: Nullable(AccountView),
  csrf_token: Type.String({ description: 'Send it as the x-csrf-token header on every POST.' }),
  signup: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  signup_credit_cents: Type.Integer(),
  api_base_url: Type.String(),
});
export const SignedOut = Type.Object({ signed_out: Type.Literal(true) });
export const AccountList = Type.Object({ data: Type.Array(AccountView) });
export const NewAccount = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  name: Type.Optional(Type.String({ maxLength: 100 })),
  role: Type.Optional(Role),
});
export const AccountCreated = Type.Object({
  account: AccountView,
  password: Type.String({ description: 'The generated dashboard password: in this response only.' }),
});
