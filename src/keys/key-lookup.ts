// Finds a key (and its account's email) by the SHA-256 of the presented key: the one database
// read on every API request. On SQLite it is a statement prepared once and run synchronously; it
// reads only api_keys and accounts.email, which no multi-statement transaction writes, so it
// needs no lock against the ledger's group commits on the same connection.
import type { Database } from '../db/connection.ts';
import type { ApiKeyRow } from '../db/schema.ts';

export type KeyRecord = ApiKeyRow & { account_email: string };
export type KeyFinder = (hash: string) => Promise<KeyRecord | undefined>;

export function createKeyFinder(database: Database): KeyFinder {
  const { sqlite, db } = database;
  if (sqlite) {
    const stmt = sqlite.prepare(
      'SELECT k.id, k.account_id, k.name, k.hash, k.preview, k.mode, k.created_at, k.last_used_at, k.revoked_at, k.expires_at, a.email AS account_email FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.hash = ?',
    );
    return async (hash) => stmt.get(hash) as KeyRecord | undefined;
  }
  return (hash) =>
    db
      .selectFrom('api_keys')
      .innerJoin('accounts', 'accounts.id', 'api_keys.account_id')
      .selectAll('api_keys')
      .select(['accounts.email as account_email'])
      .where('api_keys.hash', '=', hash)
      .executeTakeFirst();
}
