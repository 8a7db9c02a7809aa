// Finds a key by the SHA-256 of the presented key: the one database read on every API request,
// and never cached, so a revoked key is refused on its next request.
//
// SQLite: a statement prepared once and run synchronously; it reads only api_keys, which no
// multi-statement transaction writes, so it needs no lock against the ledger's group commits on
// the same connection.
//
// PostgreSQL: the look-ups of one event-loop turn go to the database together, as one named
// prepared statement over an array of hashes. A look-up per request was a query per request,
// and its socket write alone was a quarter of the server's CPU under load (bench/README.md).
import type pg from 'pg';
import type { Database } from '../db/connection.ts';
import type { ApiKeyRow } from '../db/schema.ts';

export type KeyFinder = (hash: string) => Promise<ApiKeyRow | undefined>;

const COLUMNS = 'id, account_id, name, hash, preview, mode, created_at, last_used_at, revoked_at, expires_at';

export function createKeyFinder(database: Database): KeyFinder {
  const { sqlite, pool } = database;
  if (sqlite) {
    const stmt = sqlite.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE hash = ?`);
    return async (hash) => stmt.get(hash) as ApiKeyRow | undefined;
  }
  if (!pool) throw new Error('a PostgreSQL database without its pool');
  return batchedFinder(pool);
}

type Waiting = { resolve: (row: ApiKeyRow | undefined) => void; reject: (err: unknown) => void };

function batchedFinder(pool: pg.Pool): KeyFinder {
  let waiting = new Map<string, Waiting[]>();
  const query = {
    name: 'bizora_find_keys',
    text: `SELECT ${COLUMNS} FROM api_keys WHERE hash = ANY($1::text[])`,
  };

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = new Map();
    try {
      const { rows } = await pool.query<ApiKeyRow>({ ...query, values: [[...batch.keys()]] });
      const found = new Map(rows.map((r) => [r.hash, r]));
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
