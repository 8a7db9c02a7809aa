// The api_keys table: create (returns the full key once, with its limits), list, change limits,
// revoke, find by hash.
import { PostgresAdapter, sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { ApiKeyRow } from '../db/schema.ts';
import { newId } from '../lib/ids.ts';
import { forgetCachedKeys } from './key-cache.ts';
import { KEY_CHANGES_CHANNEL } from './key-changes.ts';
import { generateKey, hashKey, type KeyMode, previewKey } from './key-format.ts';
import { type KeyLimits, limitColumns } from './key-limits.ts';
import { MAX_KEY_NAME } from './key-name.ts';

export type PublicKey = Omit<ApiKeyRow, 'hash' | 'previous_hash'>;

/**
 * Tells every instance that a key changed (PostgreSQL's NOTIFY, which key-changes.ts listens for):
 * each forgets the keys it cached. (Other SQLite processes see the commit in their data_version.)
 */
async function announceChange(db: Db, keyId: string): Promise<void> {
  forgetCachedKeys();
  if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${keyId})`.execute(db);
}
export type CreatedKey = PublicKey & { key: string };

export { MAX_KEY_NAME };

/** Trims and checks a key name; null when it is not acceptable. */
export function normalizeKeyName(name: unknown): string | null {
  if (typeof name !== 'string') return null;
  const trimmed = name.trim();
  return trimmed.length > 0 && trimmed.length <= MAX_KEY_NAME ? trimmed : null;
}

const publicColumns = [
  'id',
  'account_id',
  'name',
  'preview',
  'mode',
  'created_at',
  'last_used_at',
  'revoked_at',
  'expires_at',
  'rpm',
  'tpm',
  'max_concurrency',
  'spend_limit_micros',
  'spend_period',
  'models',
  'previous_valid_until',
] as const satisfies readonly (keyof PublicKey)[];

export async function createKey(
  db: Db,
  input: { accountId: string; name: string; mode: KeyMode; now: number; expiresAt?: number | null; limits?: Partial<KeyLimits> },
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
    rpm: null,
    tpm: null,
    max_concurrency: null,
    spend_limit_micros: null,
    spend_period: null,
    models: null,
    previous_hash: null,
    previous_valid_until: null,
    ...limitColumns(input.limits ?? {}),
  };
  await db.insertInto('api_keys').values(row).execute();
  const { hash: _hash, previous_hash: _previous, ...rest } = row;
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
 * Changes a key's limits and expiry (only what is given; null clears). `accountId` scopes the
 * change as for revokeKey. Returns the key as it now is, or undefined.
 */
export async function updateKey(
  db: Db,
  input: { keyId: string; accountId?: string; limits?: Partial<KeyLimits>; expiresAt?: number | null },
): Promise<PublicKey | undefined> {
  const set: Partial<ApiKeyRow> = { ...limitColumns(input.limits ?? {}) };
  if (input.expiresAt !== undefined) set.expires_at = input.expiresAt;
  return changeKey(db, input, set);
}

/**
 * Sets a key's columns (nothing when `set` is empty; with `activeOnly`, only while it is not
 * revoked), scoped to `accountId` when given, tells every instance, and answers the key as it now
 * is, or undefined when there is no such key (in that account).
 */
async function changeKey(
  db: Db,
  input: { keyId: string; accountId?: string },
  set: Partial<ApiKeyRow>,
  activeOnly = false,
): Promise<PublicKey | undefined> {
  if (Object.keys(set).length) {
    let q = db.updateTable('api_keys').set(set).where('id', '=', input.keyId);
    if (activeOnly) q = q.where('revoked_at', 'is', null);
    if (input.accountId) q = q.where('account_id', '=', input.accountId);
    await q.execute();
    await announceChange(db, input.keyId);
  }
  const key = await getKey(db, input.keyId);
  if (!key || (input.accountId && key.account_id !== input.accountId)) return undefined;
  return key;
}

export type RotatedKey = { id: string; key: string; preview: string; previous_valid_until: number | null };

/**
 * Gives a key a new secret: the same id, name, limits and usage. The former secret keeps working
 * for `graceMs` (0: not at all); a secret from an earlier rotation stops at once. A revoked key is
 * not rotated (undefined, as for a key that is not there). `accountId` scopes it as for revokeKey.
 */
export async function rotateKey(
  db: Db,
  input: { keyId: string; graceMs: number; now: number; accountId?: string },
): Promise<RotatedKey | undefined> {
  const current = await db
    .selectFrom('api_keys')
    .select(['id', 'account_id', 'hash', 'mode', 'revoked_at'])
    .where('id', '=', input.keyId)
    .executeTakeFirst();
  if (!current || current.revoked_at !== null || (input.accountId && current.account_id !== input.accountId)) return undefined;
  const key = generateKey(current.mode);
  const previousValidUntil = input.graceMs > 0 ? input.now + input.graceMs : null;
  const changed = await db
    .updateTable('api_keys')
    .set({
      hash: hashKey(key),
      preview: previewKey(key),
      previous_hash: previousValidUntil === null ? null : current.hash,
      previous_valid_until: previousValidUntil,
    })
    .where('id', '=', current.id)
    // Two rotations at once: one wins, the other is told the key is not there to rotate.
    .where('hash', '=', current.hash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (Number(changed.numUpdatedRows) !== 1) return undefined;
  await announceChange(db, current.id);
  return { id: current.id, key, preview: previewKey(key), previous_valid_until: previousValidUntil };
}

/**
 * Revokes a key; idempotent. `accountId` scopes the change (the dashboard passes the signed-in
 * account, so nobody can revoke another account's key). Returns the key, or undefined.
 */
export function revokeKey(db: Db, input: { keyId: string; now: number; accountId?: string }): Promise<PublicKey | undefined> {
  return changeKey(db, input, { revoked_at: input.now }, true);
}
