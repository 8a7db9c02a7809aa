// Management keys, `sk_admin_…`: created with `bizora admin-keys create --name N`, shown once,
// stored as their SHA-256. They authenticate the management API (/v1/admin/) and nothing else;
// model keys are never valid there (a different prefix: the format check tells them apart
// before any look-up).
import type { Db } from '../db/connection.ts';
import type { AdminKeysTable } from '../db/schema.ts';
import { checkSecret, generateSecret, hashKey } from '../keys/key-format.ts';
import { newId } from '../lib/ids.ts';

export const ADMIN_KEY_PREFIX = 'sk_admin_';

export type AdminKey = Omit<AdminKeysTable, 'hash'>;

export async function createAdminKey(db: Db, input: { name: string; now: number }): Promise<AdminKey & { key: string }> {
  const key = generateSecret(ADMIN_KEY_PREFIX);
  const row: AdminKeysTable = {
    id: newId('admkey', input.now),
    name: input.name,
    hash: hashKey(key),
    preview: `${key.slice(0, ADMIN_KEY_PREFIX.length + 4)}…${key.slice(-4)}`,
    created_at: input.now,
    last_used_at: null,
    revoked_at: null,
  };
  await db.insertInto('admin_keys').values(row).execute();
  const { hash: _hash, ...rest } = row;
  return { ...rest, key };
}

const COLUMNS = ['id', 'name', 'preview', 'created_at', 'last_used_at', 'revoked_at'] as const;

export const listAdminKeys = (db: Db): Promise<AdminKey[]> =>
  db.selectFrom('admin_keys').select(COLUMNS).orderBy('created_at', 'desc').execute();

export async function revokeAdminKey(db: Db, id: string, now: number): Promise<AdminKey | undefined> {
  await db.updateTable('admin_keys').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  return db.selectFrom('admin_keys').select(COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** The active management key a presented secret is, or undefined. */
export async function findAdminKey(db: Db, presented: string): Promise<AdminKey | undefined> {
  if (!checkSecret(presented, ADMIN_KEY_PREFIX)) return undefined;
  return db
    .selectFrom('admin_keys')
    .select(COLUMNS)
    .where('hash', '=', hashKey(presented))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
}
