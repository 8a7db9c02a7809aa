// The api_keys table: create (returns the full key once), list, revoke, find by hash.
import type { Db } from '../db/connection.ts';
import type { ApiKeyRow } from '../db/schema.ts';
import { newId } from '../lib/ids.ts';
import { generateKey, hashKey, type KeyMode, previewKey } from './key-format.ts';
import { MAX_KEY_NAME } from './key-name.ts';

export type PublicKey = Omit<ApiKeyRow, 'hash'>;
export type CreatedKey = PublicKey & { key: string };

export { MAX_KEY_NAME };

/** Trims and checks a key name; null when it is not acceptable. */
export function normalizeKeyName(name: unknown): string | null {
  if (typeof name !== 'string') return null;
  const trimmed = name.trim();
  return trimmed.length > 0 && trimmed.length <= MAX_KEY_NAME ? trimmed : null;
}

const publicColumns = ['id', 'account_id', 'name', 'preview', 'mode', 'created_at', 'last_used_at', 'revoked_at', 'expires_at'] as const;

export async function createKey(
  db: Db,
  input: { accountId: string; name: string; mode: KeyMode; now: number; expiresAt?: number | null },
): Promise<CreatedKey> {
  const key = generateKey(input.mode);
  const row: ApiKeyRow = {
    id: newId('key', input.now),
    account_id: input.accountId,
    name: input.name,
    hash: hashKey(key),
    preview: previewKey(key),
    mode: input.mode,
    created_at: input.now,
    last_used_at: null,
    revoked_at: null,
    expires_at: input.expiresAt ?? null,
  };
  await db.insertInto('api_keys').values(row).execute();
  const { hash: _hash, ...rest } = row;
  return { ...rest, key };
}

export function listKeys(db: Db, accountId: string): Promise<PublicKey[]> {
  return db
    .selectFrom('api_keys')
    .select(publicColumns)
    .where('account_id', '=', accountId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
}

export function getKey(db: Db, keyId: string): Promise<PublicKey | undefined> {
  return db.selectFrom('api_keys').select(publicColumns).where('id', '=', keyId).executeTakeFirst();
}

/**
 * Revokes a key; idempotent. `accountId` scopes the change (the dashboard passes the signed-in
 * account, so nobody can revoke another account's key). Returns the key, or undefined.
 */
export async function revokeKey(db: Db, input: { keyId: string; now: number; accountId?: string }): Promise<PublicKey | undefined> {
  let q = db.updateTable('api_keys').set({ revoked_at: input.now }).where('id', '=', input.keyId).where('revoked_at', 'is', null);
  if (input.accountId) q = q.where('account_id', '=', input.accountId);
  await q.execute();
  const key = await getKey(db, input.keyId);
  if (!key || (input.accountId && key.account_id !== input.accountId)) return undefined;
  return key;
}
