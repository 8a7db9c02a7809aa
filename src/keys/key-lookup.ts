// Finds a key by the SHA-256 of the presented key: the one database read of an API request
// (behind the cache of key-cache.ts). A rotated key's former secret is found by its
// previous_hash (the caller checks its grace).
//
// The look-ups of one event-loop turn go to the database together, as one statement over all
// their hashes (a turn with one look-up uses the one-row statement).
// - SQLite: one statement is one read transaction. A read transaction per request took four
//   file-lock system calls (strace) and was 5–6 % of the busy server under load. The statement
//   reads only api_keys, which no multi-statement transaction writes, so it needs no lock
//   against the ledger's group commits on the same connection.
// - PostgreSQL: one named prepared statement (unnamed when BIZORA_PG_PREPARED_STATEMENTS=off, for a
//   pooler in transaction mode). A query per request was a round trip per request, and its socket
//   write alone was a quarter of the server's CPU under load (bench/README.md).
import type { Database } from '../db/connection.ts';
import type { ApiKeyRow } from '../db/schema.ts';

export type KeyFinder = (hash: string) => Promise<ApiKeyRow | undefined>;

const COLUMNS =
  'id, account_id, name, hash, preview, mode, created_at, last_used_at, revoked_at, expires_at, rpm, tpm, max_concurrency, spend_limit_micros, spend_period, models, previous_hash, previous_valid_until';

export function createKeyFinder(database: Database, opts: { prepared?: boolean } = {}): KeyFinder {
  if (database.dialect === 'sqlite') {
    const { sqlite } = database;
    const statements = (column: 'hash' | 'previous_hash') => ({
      one: sqlite.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE ${column} = ?`),
      many: sqlite.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE ${column} IN (SELECT value FROM json_each(?))`),
    });
    const byColumn = { hash: statements('hash'), previous_hash: statements('previous_hash') };
    return batched(async (hashes, column) => {
      const { one, many } = byColumn[column];
      if (hashes.length > 1) return many.all(JSON.stringify(hashes)) as ApiKeyRow[];
      const row = one.get(hashes[0]) as ApiKeyRow | undefined;
      return row ? [row] : [];
    });
  }
  const { pool } = database;
  const query = (column: 'hash' | 'previous_hash') => ({
    ...(opts.prepared === false ? {} : { name: `bizora_find_keys_by_${column}` }),
    text: `SELECT ${COLUMNS} FROM api_keys WHERE ${column} = ANY($1::text[])`,
  });
  const queries = { hash: query('hash'), previous_hash: query('previous_hash') };
  return batched(async (hashes, column) => (await pool.query<ApiKeyRow>({ ...queries[column], values: [hashes] })).rows);
}

type Waiting = { resolve: (row: ApiKeyRow | undefined) => void; reject: (err: unknown) => void };

/**
 * Gathers the look-ups of one event-loop turn and answers each from one `fetch` of all their rows.
 * A hash no key has now may be a rotated key's former secret: those are looked up once more, by
 * previous_hash (only on a miss, so the usual look-up stays one statement).
 */
function batched(fetch: (hashes: string[], column: 'hash' | 'previous_hash') => Promise<ApiKeyRow[]>): KeyFinder {
  let waiting = new Map<string, Waiting[]>();

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = new Map();
    try {
      const found = new Map<string, ApiKeyRow>();
      for (const r of await fetch([...batch.keys()], 'hash')) found.set(r.hash, r);
      const missing = [...batch.keys()].filter((h) => !found.has(h));
      if (missing.length) for (const r of await fetch(missing, 'previous_hash')) if (r.previous_hash) found.set(r.previous_hash, r);
      for (const [hash, ws] of batch) for (const w of ws) w.resolve(found.get(hash));
    } catch (err) {
      for (const ws of batch.values()) for (const w of ws) w.reject(err);
    }
  }

  return (hash) =>
    new Promise((resolve, reject) => {
      if (waiting.size === 0) setImmediate(() => void flush());
      const list = waiting.get(hash);
      if (list) list.push({ resolve, reject });
      else waiting.set(hash, [{ resolve, reject }]);
    });
}
