// Runs ledger operations atomically. The server uses group commit: operations that arrive in
// the same turn of the event loop share one transaction, one operation failing fails only
// itself (the batch is re-run one operation per transaction), and no operation is reported done
// before the COMMIT that makes it durable. A commit costs far more than the statements in it
// (bench/README.md), so this is where throughput comes from. The ledger's property tests
// (test/ledger.test.ts) run these executors, on both databases.
import type BetterSqlite3 from 'better-sqlite3';
import type { ControlledTransaction } from 'kysely';
import type pg from 'pg';
import { type Database, type Db, databaseUnavailable } from '../db/connection.ts';
import { runPipeline } from '../db/pg-pipeline.ts';
import type { DB, Hold, HoldStatus, LedgerEntry, NewUsageRecord } from '../db/schema.ts';
import {
  branded,
  compileFusedStatements,
  compileLedgerStatements,
  type FusedTemplates,
  fusedSettleInput,
  type KeySpendHold,
  type KeySpendSettle,
  type LedgerStatements,
  type LedgerTemplates,
  type NamedTemplate,
  postgresStatements,
  type SettleOpenHold,
  type Statements,
  sqliteStatements,
} from './ledger-statements.ts';

export interface LedgerExecutor {
  /** Runs `op` atomically: all of its statements take effect together, or none do. */
  run<T>(op: (s: LedgerStatements) => Promise<T>): Promise<T>;
}

type Pending = { op: (s: LedgerStatements) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

const MAX_BATCH = 256;

/**
 * Group commit: operations queued in the same turn of the event loop run in one transaction.
 * Subclasses say how to run a batch on their database; when a batch fails as a whole, it is
 * re-run one operation per transaction, so one bad operation cannot fail the others.
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
      if (databaseUnavailable(err)) {
        // The database did not answer in time. Re-run one by one, each operation would wait out
        // the same deadline in turn (six settlements in a stalled PostgreSQL got their 503 after
        // 3.5 to 4.5 s instead of about 0.5, test/db-outage.test.ts); and the operations queued
        // while this batch waited have waited for that answer already: they fail with it.
        for (const p of [...batch, ...this.queue.splice(0)]) p.reject(err);
        return;
      }
      // Nothing of a failed batch was kept (a deadlock, a failed COMMIT): each operation gets
      // its own transaction, so one bad operation cannot fail the others.
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

/**
 * SQLite: prepared statements on the shared connection, run synchronously within the batch.
 * Operations run without savepoints (they cost a third of a small operation's time): one that
 * fails rolls the whole batch back, and GroupCommitExecutor re-runs the batch one operation per
 * transaction, which is safe because nothing of it was kept. Failures are rare (a request
 * settled twice), so the common batch pays nothing for them.
 */
export class SqliteBatchLedgerExecutor extends GroupCommitExecutor {
  private readonly statements: LedgerStatements;
  // Transaction control, prepared once: parsing these on every batch showed in profiles.
  private readonly tx: Record<'begin' | 'commit' | 'rollback', BetterSqlite3.Statement>;

  constructor(
    private readonly db: Db,
    private readonly sqlite: BetterSqlite3.Database,
  ) {
    super();
    this.statements = sqliteStatements(compileLedgerStatements(db, 'sqlite'), sqlite);
    this.tx = {
      begin: sqlite.prepare('BEGIN IMMEDIATE'),
      commit: sqlite.prepare('COMMIT'),
      rollback: sqlite.prepare('ROLLBACK'),
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
        for (const p of batch) outcomes.push({ ok: true, value: await p.op(this.statements) });
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
 * PostgreSQL. Every request touches its account's row, whose lock is held until COMMIT, and
 * every statement is a round trip; one transaction per operation serialised all requests of an
 * account on that lock, across round trips and a WAL flush each (bench/README.md). So a batch
 * runs in two phases:
 *
 * 1. The first statement of every operation, when it is one of the fused all-or-nothing
 *    statements (a hold, the usual settlement: almost every operation, and its only statement
 *    when it succeeds), goes into one pipeline that PostgreSQL runs as one transaction
 *    (db/pg-pipeline.ts): one round trip and one WAL flush for the whole batch.
 * 2. Whatever an operation does after that (a hold that did not fit reads the balance; a late
 *    settlement takes the general path), or an operation that starts with another statement
 *    (an expiry, a grant), runs afterwards, one operation at a time in batch order, each in its
 *    own transaction.
 *
 * This is equivalent to running the operations one by one: a fused statement that wrote is the
 * whole of its operation, and one that did not wrote nothing, so running it ahead of others
 * changes no outcome (a closed hold never reopens; a hold that did not fit is only reported).
 * If the pipeline fails, nothing of it was kept, and GroupCommitExecutor re-runs the batch one
 * operation at a time.
 */
export class PostgresBatchLedgerExecutor extends GroupCommitExecutor {
  private readonly templates: LedgerTemplates;
  private readonly fused: FusedTemplates;
  // The fused statements' names prepared on each connection (PostgreSQL keeps them per session):
  // skipping the parse and plan halved the time a batch takes (bench/README.md).
  private readonly prepared = new WeakMap<pg.PoolClient, Set<string>>();

  constructor(
    private readonly db: Db,
    private readonly pool: pg.Pool,
    /**
     * Keep the fused statements prepared on each connection (BIZORA_PG_PREPARED_STATEMENTS).
     * Without it they are parsed in every pipeline, which works through any pooler.
     */
    private readonly usePrepared = true,
  ) {
    super();
    this.templates = compileLedgerStatements(db, 'postgres');
    this.fused = compileFusedStatements(db);
  }

  protected async runBatch(batch: Pending[]): Promise<Outcome[]> {
    const wave: QueuedCall[] = [];
    const probes = batch.map(() => new OperationProbe(this.db, this.templates, this.fused, wave));
    // Every operation runs up to its first statement now, synchronously; a fused one joins the wave.
    const runs = batch.map((p, i) => settled(p.op(branded(probes[i] as OperationProbe))));
    for (const probe of probes) probe.collecting = false;
    if (wave.length) {
      let counts: number[];
      try {
        counts = await this.send(wave);
      } catch (err) {
        for (const probe of probes) probe.abort(err);
        for (const c of wave) c.fail(err);
        await Promise.all(runs);
        throw err;
      }
      for (const [i, c] of wave.entries()) c.done(counts[i] === 1);
    }
    const outcomes: Outcome[] = [];
    for (const [i, probe] of probes.entries()) outcomes.push(await probe.finish(runs[i] as Promise<Outcome>));
    return outcomes;
  }

  /** Runs the wave's statements as one pipeline: one transaction, one round trip. */
  private async send(wave: readonly QueuedCall[]): Promise<number[]> {
    const client = await this.pool.connect();
    try {
      let prepared: Set<string> | undefined;
      if (this.usePrepared) {
        prepared = this.prepared.get(client) ?? new Set();
        this.prepared.set(client, prepared);
      }
      const statements = wave.map(({ statement: t, input }) => ({
        name: this.usePrepared ? t.name : undefined,
        text: t.sql,
        values: t.bind(input),
      }));
      const counts = await runPipeline(client, statements, prepared);
      client.release();
      return counts;
    } catch (err) {
      // The pool replaces the connection: a failure can leave it in any state.
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  }
}

type QueuedCall = {
  statement: NamedTemplate;
  input: Readonly<Record<string, unknown>>;
  done: (wrote: boolean) => void;
  fail: (err: unknown) => void;
};

const settled = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );

/**
 * The LedgerStatements one operation of a PostgreSQL batch sees: its first statement, if fused,
 * is queued for the batch's pipeline; anything else waits for the operation's turn and runs in
 * the operation's own transaction.
 */
class OperationProbe implements Statements {
  /** While true, the operation's first statement joins the batch's pipeline if it is a fused one. */
  collecting = true;
  private calls = 0;
  private wrote = false;
  private tx: Promise<ControlledTransaction<DB>> | undefined;
  private startTurn: (() => void) | undefined;
  private stopTurn: ((err: unknown) => void) | undefined;
  private readonly turn = new Promise<void>((resolve, reject) => {
    this.startTurn = resolve;
    this.stopTurn = reject;
  });

  constructor(
    private readonly db: Db,
    private readonly templates: LedgerTemplates,
    private readonly fusedTemplates: FusedTemplates,
    private readonly wave: QueuedCall[],
  ) {
    this.turn.catch(() => {}); // an aborted batch rejects the turn of operations that never asked for it
  }

  holdAndInsert(hold: Hold): Promise<boolean> {
    return this.fused(this.fusedTemplates.holdAndInsert, hold, (s) => s.holdAndInsert(hold));
  }
  settleOpenHold(input: SettleOpenHold): Promise<boolean> {
    return this.fused(this.fusedTemplates.settleOpenHold, fusedSettleInput(input), (s) => s.settleOpenHold(input));
  }
  balances = (accountId: string) => this.serial((s) => s.balances(accountId));
  closeHold = (holdId: string, status: HoldStatus, now: number) => this.serial((s) => s.closeHold(holdId, status, now));
  adjust = (accountId: string, change: { balance: number; held: number }) => this.serial((s) => s.adjust(accountId, change));
  insertEntry = (entry: LedgerEntry) => this.serial((s) => s.insertEntry(entry));
  insertUsage = (record: NewUsageRecord) => this.serial((s) => s.insertUsage(record));
  findGrant = (idempotencyKey: string) => this.serial((s) => s.findGrant(idempotencyKey));
  holdKeySpend = (input: KeySpendHold) => this.serial((s) => s.holdKeySpend(input));
  keySpend = (keyId: string) => this.serial((s) => s.keySpend(keyId));
  settleKeySpend = (input: KeySpendSettle) => this.serial((s) => s.settleKeySpend(input));

  private fused(
    statement: NamedTemplate,
    input: Readonly<Record<string, unknown>>,
    inTurn: (s: Required<Statements>) => Promise<boolean>,
  ): Promise<boolean> {
    if (!(this.collecting && this.calls++ === 0)) return this.serial(inTurn);
    return new Promise<boolean>((resolve, reject) => {
      this.wave.push({
        statement,
        input,
        done: (wrote) => {
          this.wrote = wrote;
          resolve(wrote);
        },
        fail: reject,
      });
    });
  }

  private async serial<T>(statement: (s: Required<Statements>) => Promise<T>): Promise<T> {
    this.calls++;
    // Committed in the batch's pipeline already: anything more would not be atomic with it.
    if (this.wrote) throw new Error('a fused ledger statement that wrote must end its operation');
    await this.turn;
    this.tx ??= this.db.startTransaction().execute();
    return statement(postgresStatements(this.templates, this.fusedTemplates, await this.tx));
  }

  abort(err: unknown): void {
    this.stopTurn?.(err);
  }

  /**
   * Gives the operation its turn and waits for it: its outcome, once its own statements are
   * committed. Never throws: the batch's pipeline is committed by now, so the batch must not be
   * re-run.
   */
  async finish(run: Promise<Outcome>): Promise<Outcome> {
    this.startTurn?.();
    const outcome = await run;
    if (!this.tx) return outcome;
    try {
      const tx = await this.tx;
      if (outcome.ok) await tx.commit().execute();
      else await tx.rollback().execute();
      return outcome;
    } catch (error) {
      return { ok: false, error };
    }
  }
}

/**
 * The server's executor for a database: group commit, on SQLite and on PostgreSQL. On PostgreSQL,
 * `prepared` (the default) keeps the fused statements prepared on each connection, which a
 * pooler in transaction mode cannot follow (the next transaction may get another server
 * connection); without it they are parsed in every batch's pipeline.
 */
export function createLedgerExecutor(database: Database, opts: { prepared?: boolean } = {}): LedgerExecutor {
  return database.dialect === 'sqlite'
    ? new SqliteBatchLedgerExecutor(database.db, database.sqlite)
    : new PostgresBatchLedgerExecutor(database.db, database.pool, opts.prepared ?? true);
}
