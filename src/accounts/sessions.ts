// Dashboard sessions. The cookie carries a random token; the table keeps only its SHA-256, so a
// leaked database cannot be replayed as sessions.
import { createHash } from 'node:crypto';
import type { Db } from '../db/connection.ts';
import { randomBase62 } from '../lib/base62.ts';
import type { PublicAccount } from './account-store.ts';

export const SESSION_COOKIE = 'bizora_session';
const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export async function createSession(db: Db, accountId: string, now: number, ttlMs: number): Promise<string> {
  const token = randomBase62(43);
  await db
    .insertInto('sessions')
    .values({ id: hash(token), account_id: accountId, created_at: now, expires_at: now + ttlMs })
    .execute();
  return token;
}

export function findSessionAccount(db: Db, token: string, now: number): Promise<PublicAccount | undefined> {
  return db
    .selectFrom('sessions')
    .innerJoin('accounts', 'accounts.id', 'sessions.account_id')
    .select([
      'accounts.id',
      'accounts.email',
      'accounts.name',
      'accounts.role',
      'accounts.balance_micros',
      'accounts.held_micros',
      'accounts.created_at',
    ])
    .where('sessions.id', '=', hash(token))
    .where('sessions.expires_at', '>', now)
    .executeTakeFirst();
}

export async function deleteSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('id', '=', hash(token)).execute();
}
