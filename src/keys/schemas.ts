// The keys capability's HTTP shapes (dashboard API); the web app's types come from these too.
import { Type } from 'typebox';
import { KeyMode, Nullable } from '../http/schema-parts.ts';
import { MAX_KEY_NAME } from './key-name.ts';

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
});
export const KeyParams = Type.Object({ id: Type.String() });
