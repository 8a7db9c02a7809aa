// Runs ledger operations atomically. PostgreSQL (and SQLite through Kysely, for tools): one
// database transaction per operation. SQLite in the server: group commit — operations that
// arrive in the same turn of the event loop share one transaction, each inside its own
// SAVEPOINT, so one operation failing rolls back only itself, and no operation is reported
// done before the COMMIT that makes it durable. On SQLite a commit costs far more than the
// statements in it (bench/README.md), so this is where throughput comes from.
import type BetterSqlite3 from 'better-sqlite3';
import type { Database, Db } from '../db/connection.ts';
import { kyselyStatements, type LedgerStatements, sqliteStatements } from './ledger-statements.ts';

export interface LedgerExecutor {
  /** Runs `op` atomically: all of its statements take effect together, or none do. */
  run<T>(op: (s: LedgerStatements) => Promise<T>): Promise<T>;
}

export class KyselyLedgerExecutor implements LedgerExecutor {
  constructor(private readonly db: Db) {}

  run<T>(op: (s: LedgerStatements) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((tx) => op(kyselyStatements(tx)));
  }
}

type Pending = { op: (s: LedgerStatements) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };

const MAX_BATCH = 256;

export class SqliteBatchLedgerExecutor implements LedgerExecutor {
  private readonly statements: LedgerStatements;
  // Transaction control, prepared once: parsing these on every operation showed in profiles.
  private readonly tx: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', BetterSqlite3.Statement>;
  private queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly db: Db,
    private readonly sqlite: BetterSqlite3.Database,
  ) {
    this.statements = sqliteStatements(sqlite);
    this.tx = {
      begin: sqlite.prepare('BEGIN IMMEDIATE'),
      commit: sqlite.prepare('COMMIT'),
      rollback: sqlite.prepare('ROLLBACK'),
      savepoint: sqlite.prepare('SAVEPOINT ledger_op'),
      release: sqlite.prepare('RELEASE ledger_op'),
      rollbackTo: sqlite.prepare('ROLLBACK TO ledger_op'),
    };
  }

  run<T>(op: (s: LedgerStatements) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) await this.commit(this.queue.splice(0, MAX_BATCH));
    this.draining = false;
  }

  private async commit(batch: Pending[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      // Kysely's connection lock: no Kysely query or transaction can interleave with the batch
      // on the shared connection while it is open.
      await this.db.connection().execute(async () => {
        const { tx } = this;
        tx.begin.run();
        try {
          for (const p of batch) {
            tx.savepoint.run();
            try {
              outcomes.push({ ok: true, value: await p.op(this.statements) });
              tx.release.run();
            } catch (error) {
              tx.rollbackTo.run();
              tx.release.run();
              outcomes.push({ ok: false, error });
            }
          }
          tx.commit.run();
        } catch (err) {
          if (this.sqlite.inTransaction) tx.rollback.run();
          throw err;
        }
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o?.ok) p.resolve(o.value);
      else p.reject(o ? o.error : new Error('ledger operation did not run'));
    });
  }
}

/** The executor for a database: group commit on SQLite, a transaction per operation elsewhere. */
export function createLedgerExecutor(database: Database): LedgerExecutor {
  return database.sqlite ? new SqliteBatchLedgerExecutor(database.db, database.sqlite) : new KyselyLedgerExecutor(database.db);
}
