// Opens the one database the process uses, chosen once by URL: `sqlite:<path>` (default,
// better-sqlite3 in WAL mode) or `postgres://…`. Everything else talks to Kysely<DB>.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, SqliteDialect, type Transaction } from 'kysely';
import type pg from 'pg';
import { loadPg } from './pg-driver.ts';
import type { DB } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<DB>;
/** Money-moving functions take only a Tx, so the type system refuses a call outside one. */
export type Tx = Transaction<DB>;

/** Kysely, and the driver under it for the hot path's own statements (which one, by dialect). */
export type Database = { db: Db; close(): Promise<void> } & (
  | { dialect: 'sqlite'; sqlite: SQLite.Database }
  | { dialect: 'postgres'; pool: pg.Pool }
);

export function sqlitePath(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/, '');
}

export type OpenOptions = {
  poolSize?: number;
  /** Deadline for connecting and for each statement (PostgreSQL), and for a busy SQLite file lock. */
  timeoutMs?: number;
  /** Called for every query executed (tests count them to prove a path makes none). */
  onQuery?: () => void;
};

// PostgreSQL: query canceled (statement_timeout), shutting down or starting up (57P01-57P03),
// connection failures (class 08), out of connections or resources (53300, 53200, 53400).
// Node: the connection could not be made or was lost. SQLite: the file lock was not granted in time.
const UNAVAILABLE_CODES = new Set([
  '57014',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53200',
  '53300',
  '53400',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'SQLITE_BUSY',
]);
// pg's own deadlines and lost connections, which carry no code: a pool wait or connect past
// connectionTimeoutMillis, a statement past query_timeout, a connection closed under a query,
// a client whose connection failed earlier.
const UNAVAILABLE_MESSAGE = /timeout exceeded when trying to connect|Query read timeout|Connection terminated|is not queryable/i;

/** Whether an error means the database could not be reached or did not answer in time (503). */
export function databaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  return typeof e?.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message);
}

const INLINE_CHECKPOINT_PAGES = 4000;

export function openDatabase(url: string, opts: OpenOptions = {}): Database {
  const onQuery = opts.onQuery;
  const log = onQuery
    ? (e: { level: string }): void => {
        if (e.level === 'query') onQuery();
      }
    : undefined;
  if (url.startsWith('sqlite:')) {
    const path = sqlitePath(url);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the
    // last transactions, never corrupt or half-apply one.
    sqlite.pragma('synchronous = NORMAL');
    // Inline, a checkpoint (copying the WAL back into the database file, with two fsyncs) runs
    // every 4,000 pages instead of SQLite's 1,000: the pages a burst of requests rewrites (an
    // account row, the right edge of each index) are copied once per checkpoint, not four times
    // (bench/README.md, step 15). The price: the request whose COMMIT crosses the threshold waits
    // for the fsyncs, and on an OS crash only, up to 4,000 pages of recent commits may not be on
    // disk yet. Step 18 tried checkpoints on a worker thread: a better tail in isolation, no gain in
    // the bench, more memory, and a WAL that under steady load did not always start over.
    sqlite.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`);
    sqlite.pragma(`busy_timeout = ${opts.timeoutMs ?? 5000}`);
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }), ...(log ? { log } : {}) });
    return {
      db,
      dialect: 'sqlite',
      sqlite,
      async close() {
        await db.destroy();
        // Kysely closes the driver only if it ever ran a query.
        if (sqlite.open) sqlite.close();
      },
    };
  }
  const timeoutMs = opts.timeoutMs ?? 5000;
  const pool = new (loadPg().Pool)({
    connectionString: url,
    max: opts.poolSize ?? 10,
    // Every wait on PostgreSQL has a deadline: a stalled server costs a request a clear 503
    // after this, never a hang (connect, waiting for a pooled connection, each statement).
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
  });
  // An idle connection that the server drops (restart, failover) must not crash the process;
  // the pool replaces it and the next query reports any lasting problem.
  pool.on('error', () => {});
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: discardingUnanswered(pool) }), ...(log ? { log } : {}) });
  return { db, dialect: 'postgres', pool, close: () => db.destroy() };
}

/**
 * The pool as Kysely sees it: a connection on which a statement failed because the database did
 * not answer goes back to the pool as broken, and the pool closes it. Kysely itself releases
 * every connection as healthy (it discards one only after a failed ROLLBACK); but a connection
 * whose statement timed out is still waiting for that statement's answer, so every query handed
 * to it afterwards would wait behind the lost one until its own deadline, for as long as the
 * connection lives (test/db-outage.test.ts). Callers of pool.query and the ledger's own
 * connections discard theirs already (pg releases with the error).
 */
function discardingUnanswered(pool: pg.Pool): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      let broken: Error | undefined;
      // Only the (sql, parameters) form: Kysely queries with a cursor only when given one, and it is not.
      const query = (sql: string, parameters: readonly unknown[]) =>
        client.query(sql, parameters as unknown[]).catch((err: unknown) => {
          if (databaseUnavailable(err)) broken = err as Error;
          throw err;
        });
      return { query: query as unknown as PostgresPoolClient['query'], release: (destroy?: boolean) => client.release(broken ?? destroy) };
    },
    end: () => pool.end(),
  };
}
