// The handful of statements the ledger is made of, behind one interface. Each is written once,
// in Kysely, and compiled once per database; a small runner per driver executes the compiled SQL
// (prepared better-sqlite3 statements on SQLite; a connection on PostgreSQL). On PostgreSQL the
// hold and the usual settlement are also those same statements joined into one each (the batch's
// fast path, below). The ledger's logic (ledger.ts) is written once against this interface; the
// property tests run it through the executors the server runs. A LedgerStatements object only
// exists inside a transaction (ledger-executor.ts), so nothing can move money outside one.
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, type Expression, type ExpressionBuilder, type QueryCreator, type SqlBool } from 'kysely';
import type { Db, Dialect, Tx } from '../db/connection.ts';
import type { DB, Hold, HoldStatus, LedgerEntry, NewUsageRecord } from '../db/schema.ts';
import { hasRow, param, row, rowSelection, type Template, template } from '../db/statement-template.ts';
import { recordUsage } from '../usage/usage-store.ts';

export type Balances = { balance_micros: number; held_micros: number };
/** The entry a grant with an idempotency key wrote. */
export type GrantRecord = Pick<LedgerEntry, 'account_id' | 'amount_micros' | 'balance_after_micros'>;

/**
 * Only a type: no module has a value of this symbol, so no object literal can pass for
 * LedgerStatements. The runners below (which need a transaction, or check that one is open) and
 * the executor's probe are the only things that make them.
 */
declare const madeByTheLedgerRunner: unique symbol;
export type LedgerStatements = Statements & { readonly [madeByTheLedgerRunner]: true };
/** The statements themselves: what a runner implements. */
export interface Statements {
  /**
   * Places the hold if the account's available balance covers it: held += amount and the hold's
   * row, or nothing at all; whether it did.
   */
  holdAndInsert(hold: Hold): Promise<boolean>;
  balances(accountId: string): Promise<Balances | undefined>;
  /** Moves an open hold to `status`; whether this call was the one that closed it. */
  closeHold(holdId: string, status: HoldStatus, now: number): Promise<boolean>;
  /** balance += balance, held += held; the balance after, or undefined when there is no such account. */
  adjust(accountId: string, change: { balance: number; held: number }): Promise<number | undefined>;
  insertEntry(entry: LedgerEntry): Promise<void>;
  insertUsage(record: NewUsageRecord): Promise<void>;
  /** The grant made with this idempotency key, if there is one. */
  findGrant(idempotencyKey: string): Promise<GrantRecord | undefined>;
  /**
   * Holds `amount` against a key's spend limit if what it spent in the period that began at
   * `window` (a new period starts from nothing), plus what it holds, plus `amount`, is within
   * `limit`; whether it did. (A key's first hold is within its limit: the caller checks that.)
   */
  holdKeySpend(input: KeySpendHold): Promise<boolean>;
  /** A key's spend row, if it has one (locked until COMMIT on PostgreSQL). */
  keySpend(keyId: string): Promise<KeySpendRow | undefined>;
  /** A key's hold released (`held`, 0 when it was released already) and `charge` spent in the period that began at `window`. */
  settleKeySpend(input: KeySpendSettle): Promise<void>;
  /**
   * Optional, one round trip: the usual settlement of a hold that is still open — close it,
   * release it, charge, write the entry (its balance_after filled in) and the usage record.
   * False when the hold was not open, and then nothing was written.
   */
  settleOpenHold?(input: SettleOpenHold): Promise<boolean>;
}

export type KeySpendRow = { window_start: number; spent_micros: number; held_micros: number };
export type KeySpendHold = { key: string; window: number; amount: number; limit: number };
export type KeySpendSettle = { key: string; window: number; held: number; charge: number };

export type SettleOpenHold = {
  hold: Hold;
  close: HoldStatus;
  now: number;
  /** What the settlement does to the account's balances (adjust's change). */
  change: { balance: number; held: number };
  /** The entry to write; its balance_after_micros is the one the change leaves. */
  entry: LedgerEntry;
  usage: NewUsageRecord;
};

// Each statement is written once, with Kysely, as a builder with named parameters; the builders
// are compiled once per database when an executor is made, and run by a small runner per driver:
// prepared better-sqlite3 statements (synchronous, inside the SQLite batch's transaction) or a
// PostgreSQL connection (parameterised). PostgreSQL's fused statements are these same builders
// joined by WITH, each part writing only if the one before it did.

const ENTRY_COLUMNS = [
  'id',
  'account_id',
  'kind',
  'amount_micros',
  'balance_after_micros',
  'request_id',
  'reason',
  'hold_micros',
  'idempotency_key',
  'created_at',
] as const satisfies readonly (keyof LedgerEntry)[];
const HOLD_COLUMNS = [
  'id',
  'account_id',
  'request_id',
  'amount_micros',
  'status',
  'created_at',
  'expires_at',
  'closed_at',
  'key_id',
] as const satisfies readonly (keyof Hold)[];

// Only what the builders use, so that a QueryCreator that also knows a WITH's tables will do.
type Q = Pick<QueryCreator<DB>, 'updateTable' | 'insertInto' | 'selectNoFrom'>;

/** held += amount_micros, if the available balance covers it. Parameters: a Hold's fields. */
const placeHold = (qc: Q) =>
  qc
    .updateTable('accounts')
    .set((eb) => ({ held_micros: eb('held_micros', '+', param<number>('amount_micros')) }))
    .where('id', '=', param<string>('account_id'))
    .where((eb) => eb(eb('balance_micros', '-', eb.ref('held_micros')), '>=', param<number>('amount_micros')));

/** The hold's row, from a Hold's fields; with `when`, only if that holds. */
function insertHold(qc: Q, when?: Expression<SqlBool>) {
  const insert = qc.insertInto('holds');
  if (!when) return insert.values(row(HOLD_COLUMNS));
  return insert.columns(HOLD_COLUMNS).expression(qc.selectNoFrom(rowSelection(HOLD_COLUMNS)).where(when));
}

/** An open hold to `status` at `now`. Parameters: hold, status, now. */
const closeHold = (qc: Q) =>
  qc
    .updateTable('holds')
    .set({ status: param<HoldStatus>('status'), closed_at: param<number>('now') })
    .where('id', '=', param<string>('hold'))
    .where('status', '=', 'open');

/** balance += balance, held += held. Parameters: account, balance, held. */
const adjust = (qc: Q) =>
  qc
    .updateTable('accounts')
    .set((eb) => ({
      balance_micros: eb('balance_micros', '+', param<number>('balance')),
      held_micros: eb('held_micros', '+', param<number>('held')),
    }))
    .where('id', '=', param<string>('account'));

/** Writes a ledger entry, a whole row from the parameters `<prefix>.<column>` (or `<column>`). */
const insertEntry = (qc: Q, prefix?: string) => qc.insertInto('ledger_entries').values(row(ENTRY_COLUMNS, prefix));

/** What a key spent in the period that began at the parameter `window` (nothing, if that period is new). */
const spentInWindow = (eb: ExpressionBuilder<DB, 'key_spend'>) =>
  eb.case().when('key_spend.window_start', '<', param<number>('window')).then(eb.lit(0)).else(eb.ref('key_spend.spent_micros')).end();

/** The period's start: the parameter `window` once it has begun. */
const windowAfter = (eb: ExpressionBuilder<DB, 'key_spend'>) =>
  eb
    .case()
    .when('key_spend.window_start', '<', param<number>('window'))
    .then(param<number>('window'))
    .else(eb.ref('key_spend.window_start'))
    .end();

/** The ledger's statements for one database, compiled. `db` is only asked to compile, never to run. */
export type LedgerTemplates = ReturnType<typeof compileLedgerStatements>;

/**
 * On PostgreSQL reading the balances locks the account row until COMMIT, so that what a late
 * settlement computes from them (the charge it can still afford) still holds when it writes,
 * whatever other transactions commit meanwhile. SQLite has one writer at a time.
 */
export function compileLedgerStatements(db: Db, dialect: Dialect) {
  const balances = db.selectFrom('accounts').select(['balance_micros', 'held_micros']).where('id', '=', param<string>('account'));
  const keySpend = db
    .selectFrom('key_spend')
    .select(['window_start', 'spent_micros', 'held_micros'])
    .where('key_id', '=', param<string>('key'));
  return {
    hold: template(placeHold(db)),
    insertHold: template(insertHold(db)),
    balances: template(dialect === 'postgres' ? balances.forUpdate() : balances),
    closeHold: template(closeHold(db)),
    adjust: template(adjust(db).returning('balance_micros')),
    insertEntry: template(insertEntry(db)),
    // The usage capability's own statement, run in the ledger's transaction.
    insertUsage: template(recordUsage(db)),
    findGrant: template(
      db
        .selectFrom('ledger_entries')
        .select(['account_id', 'amount_micros', 'balance_after_micros'])
        .where('idempotency_key', '=', param<string>('key')),
    ),
    holdKeySpend: template(
      db
        .insertInto('key_spend')
        .values({ key_id: param('key'), window_start: param('window'), spent_micros: 0, held_micros: param('amount') })
        .onConflict((oc) =>
          oc
            .column('key_id')
            .doUpdateSet((eb) => ({
              spent_micros: spentInWindow(eb),
              window_start: windowAfter(eb),
              held_micros: eb('key_spend.held_micros', '+', param<number>('amount')),
            }))
            .where((eb) =>
              eb(
                eb(eb(spentInWindow(eb), '+', eb.ref('key_spend.held_micros')), '+', param<number>('amount')),
                '<=',
                param<number>('limit'),
              ),
            ),
        ),
    ),
    // Locks the row on PostgreSQL, like balances: a settlement takes the key's row before the
    // account's, in the order a hold takes them, so the two never wait on each other.
    keySpend: template(dialect === 'postgres' ? keySpend.forUpdate() : keySpend),
    settleKeySpend: template(
      db
        .updateTable('key_spend')
        .set((eb) => ({
          spent_micros: eb(spentInWindow(eb), '+', param<number>('charge')),
          window_start: windowAfter(eb),
          held_micros: eb('key_spend.held_micros', '-', param<number>('held')),
        }))
        .where('key_id', '=', param<string>('key')),
    ),
  };
}

/** A statement PostgreSQL keeps prepared on a connection under `name`. */
export type NamedTemplate = Template & { name: string };

/**
 * PostgreSQL's two fused statements, made of the builders above: each does all of its writes or
 * none (and then reports no row inserted), which is what lets the batch executor run them ahead
 * of a batch's other statements (ledger-executor.ts).
 *
 * - holdAndInsert: placeHold, then the hold's row if it was placed. Input: a Hold.
 * - settleOpenHold: closeHold, then adjust if the hold was open, then the entry (its balance
 *   after from adjust) and the usage record. Input: fusedSettleInput's.
 *
 * Each answers with the id of its last part's row: one row when it wrote, none when it did not.
 */
export function compileFusedStatements(db: Db) {
  const holdAndInsert = db
    .with('held', (qc) => placeHold(qc).returning('id'))
    .with('hold', (qc) => insertHold(qc, hasRow('held')).returning('id'))
    .selectFrom('hold')
    .select('id');
  const settleOpenHold = db
    .with('closed', (qc) => closeHold(qc).returning('id'))
    .with('account', (qc) => adjust(qc).where(hasRow('closed')).returning('balance_micros'))
    .with('entry', (qc) =>
      qc
        .insertInto('ledger_entries')
        .columns(['balance_after_micros', ...ENTRY_INPUT_COLUMNS])
        .expression(
          qc
            .selectFrom('account')
            .select((eb) => [eb.ref('account.balance_micros').as('balance_after_micros'), ...rowSelection(ENTRY_INPUT_COLUMNS, 'entry')]),
        )
        .returning('id'),
    )
    .with('usage', (qc) => recordUsage(qc, 'usage', hasRow('entry')).returning('id'))
    .selectFrom('usage')
    .select('id');
  return {
    holdAndInsert: { name: 'bizora_hold_and_insert', ...template(holdAndInsert) },
    settleOpenHold: { name: 'bizora_settle_open_hold', ...template(settleOpenHold) },
  } satisfies Record<string, NamedTemplate>;
}

/** A settlement's entry as given, but for the balance after, which the statement fills in. */
const ENTRY_INPUT_COLUMNS = ENTRY_COLUMNS.filter((c) => c !== 'balance_after_micros');

/** The input of the fused settlement: each part's parameters, under their names. */
export const fusedSettleInput = ({ hold, close, now, change, entry, usage }: SettleOpenHold) => ({
  hold: hold.id,
  status: close,
  now,
  account: hold.account_id,
  balance: change.balance,
  held: change.held,
  entry,
  usage,
});

/** Runs a compiled statement: what it changed, and its first row. */
type Runner = {
  run(t: Template, input: Readonly<Record<string, unknown>>): Promise<{ changes: number; row: unknown }>;
};

/** The ledger's statements, once, over a runner. */
function ledgerStatements(t: LedgerTemplates, r: Runner): LedgerStatements {
  return branded({
    async holdAndInsert(hold) {
      if ((await r.run(t.hold, hold)).changes !== 1) return false;
      await r.run(t.insertHold, hold);
      return true;
    },
    balances: async (account) => (await r.run(t.balances, { account })).row as Balances | undefined,
    closeHold: async (hold, status, now) => (await r.run(t.closeHold, { hold, status, now })).changes === 1,
    adjust: async (account, change) =>
      ((await r.run(t.adjust, { account, balance: change.balance, held: change.held })).row as { balance_micros: number } | undefined)
        ?.balance_micros,
    async insertEntry(entry) {
      await r.run(t.insertEntry, entry);
    },
    async insertUsage(record) {
      await r.run(t.insertUsage, record);
    },
    findGrant: async (key) => (await r.run(t.findGrant, { key })).row as GrantRecord | undefined,
    holdKeySpend: async (input) => (await r.run(t.holdKeySpend, input)).changes === 1,
    keySpend: async (key) => (await r.run(t.keySpend, { key })).row as KeySpendRow | undefined,
    async settleKeySpend(input) {
      await r.run(t.settleKeySpend, input);
    },
  });
}

/** The one place a Statements becomes LedgerStatements (and the executor's probe, through it). */
export const branded = <S extends Statements>(s: S): S & LedgerStatements => s as S & LedgerStatements;

/** The statements inside a Kysely transaction (PostgreSQL's operations that are not fused). */
function transactionStatements(t: LedgerTemplates, tx: Tx): LedgerStatements {
  return ledgerStatements(t, {
    async run(template, input) {
      const result = await tx.executeQuery(CompiledQuery.raw(template.sql, template.bind(input)));
      return { changes: Number(result.numAffectedRows ?? 0n), row: result.rows[0] };
    },
  });
}

/**
 * The statements on the SQLite connection, each prepared once and run synchronously. Only the
 * SQLite batch executor calls this, and it runs them between its BEGIN and COMMIT; run outside a
 * transaction they refuse (the Kysely runner needs a Tx, which only a transaction gives).
 */
export function sqliteStatements(t: LedgerTemplates, sqlite: BetterSqlite3.Database): LedgerStatements {
  const prepared = new Map<Template, { statement: BetterSqlite3.Statement; returnsRows: boolean }>();
  for (const template of Object.values(t)) {
    const statement = sqlite.prepare(template.sql);
    prepared.set(template, { statement, returnsRows: statement.reader });
  }
  return ledgerStatements(t, {
    async run(template, input) {
      // Money moves only inside a transaction: a statement run outside the executor's is a bug.
      if (!sqlite.inTransaction) throw new Error('ledger statements run only inside the ledger executor’s transaction');
      const p = prepared.get(template) as { statement: BetterSqlite3.Statement; returnsRows: boolean };
      const args = template.bind(input);
      if (p.returnsRows) {
        const row = p.statement.get(...args);
        return { changes: row === undefined ? 0 : 1, row };
      }
      return { changes: p.statement.run(...args).changes, row: undefined };
    },
  });
}

export type FusedTemplates = ReturnType<typeof compileFusedStatements>;

/**
 * PostgreSQL inside one Kysely transaction: the ledger's statements with the two fused ones in
 * place. The batch executor runs the fused statements of a batch together and only the rest
 * through this.
 */
export function postgresStatements(t: LedgerTemplates, fused: FusedTemplates, tx: Tx): Required<Statements> & LedgerStatements {
  const wrote = async (f: NamedTemplate, input: Readonly<Record<string, unknown>>) =>
    (await tx.executeQuery(CompiledQuery.raw(f.sql, f.bind(input)))).rows.length === 1;
  return branded({
    ...transactionStatements(t, tx),
    holdAndInsert: (h: Hold) => wrote(fused.holdAndInsert, h),
    settleOpenHold: (input: SettleOpenHold) => wrote(fused.settleOpenHold, fusedSettleInput(input)),
  });
}
