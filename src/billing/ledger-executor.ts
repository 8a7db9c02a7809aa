// Runs ledger operations atomically. The server uses group commit: operations that arrive in
// the same turn of the event loop share one transaction, each inside its own SAVEPOINT, so one
// operation failing rolls back only itself, and no operation is reported done before the COMMIT
// that makes it durable. A commit costs far more than the statements in it (bench/README.md), so
// this is where throughput comes from. One transaction per operation (KyselyLedgerExecutor) is the
// plain reference the property tests compare against.
import type BetterSqlite3 from 'better-sqlite3';
import type { Database, Db, Tx } from '../db/connection.ts';
import { kyselyStatements, type LedgerStatements, postgresStatements, sqliteStatements } from './ledger-statements.ts';

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
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

const MAX_BATCH = 256;

/**
 * Group commit: operations queued in the same turn of the event loop run in one transaction,
 * each in its own savepoint. Subclasses say how to run a batch on their database.
 */
abstract class GroupCommitExecutor implements LedgerExecutor {
  private queue: Pending[] = [];
  private draining = false;

  run<T>(op: (s: LedgerStatements) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Runs the batch in one transaction; throws if the transaction as a whole failed. */
  protected abstract runBatch(batch: Pending[]): Promise<Outcome[]>;

  private async drain(): Promise<void> {
    while (this.queue.length) await this.commit(this.queue.splice(0, MAX_BATCH));
    this.draining = false;
  }

  private async commit(batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.runBatch(batch);
    } catch (err) {
      // Nothing of a failed batch was kept (a deadlock, a busy database, a failed COMMIT):
      // each operation gets its own transaction, so one bad operation cannot fail the others.
      if (batch.length === 1) batch[0]?.reject(err);
      else for (const p of batch) await this.commit([p]);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o?.ok) p.resolve(o.value);
      else p.reject(o ? o.error : new Error('ledger operation did not run'));
    });
  }
}

/** SQLite: prepared statements on the shared connection, run synchronously within the batch. */
export class SqliteBatchLedgerExecutor extends GroupCommitExecutor {
  private readonly statements: LedgerStatements;
  // Transaction control, prepared once: parsing these on every operation showed in profiles.
  private readonly tx: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', BetterSqlite3.Statement>;

  constructor(
    private readonly db: Db,
    private readonly sqlite: BetterSqlite3.Database,
  ) {
    super();
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

  protected async runBatch(batch: Pending[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    // Kysely's connection lock: no Kysely query can interleave with the batch on the shared
    // connection while it is open.
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
    return outcomes;
  }
}

/**
 * PostgreSQL: one Kysely transaction per batch. Every request touches its account's row, whose
 * lock is held until COMMIT; one transaction per operation serialised all requests of an account
 * on that lock and a WAL flush each (bench/README.md), a batch takes the lock and flushes once.
 * Savepoints would cost two round trips per operation, so the batch runs without them: an
 * operation that fails aborts the transaction, and the batch is re-run one operation per
 * transaction (GroupCommitExecutor), which is safe because nothing of it was kept.
 */
export class KyselyBatchLedgerExecutor extends GroupCommitExecutor {
  constructor(
    private readonly db: Db,
    private readonly statementsFor: (tx: Tx) => LedgerStatements = kyselyStatements,
  ) {
    super();
  }

  protected async runBatch(batch: Pending[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    const trx = await this.db.startTransaction().execute();
    try {
      const statements = this.statementsFor(trx);
      for (const p of batch) outcomes.push({ ok: true, value: await p.op(statements) });
      await trx.commit().execute();
    } catch (err) {
      await trx
        .rollback()
        .execute()
        .catch(() => {});
      throw err;
    }
    return outcomes;
  }
}

/** The server's executor for a database: group commit, on SQLite and on PostgreSQL. */
export function createLedgerExecutor(database: Database): LedgerExecutor {
  return database.sqlite
    ? new SqliteBatchLedgerExecutor(database.db, database.sqlite)
    : new KyselyBatchLedgerExecutor(database.db, postgresStatements);
}
