// The handful of statements the ledger is made of, behind one interface. Each is written once,
// in Kysely, and compiled once per database; a small runner per driver executes the compiled SQL
// (prepared better-sqlite3 statements on SQLite; the transaction's connection on PostgreSQL).
// PostgreSQL's hold and usual settlement are also fused into one statement each (the batch's fast
// path, below). The ledger's logic (ledger.ts) is written once against this interface; the
// property tests run it through the executors the server runs. A LedgerStatements object only
// exists inside a transaction (ledger-executor.ts), so nothing can move money outside one.
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import type { Db, Dialect, Tx } from '../db/connection.ts';
import { loadPg } from '../db/pg-driver.ts';
import type { Hold, HoldStatus, LedgerEntry, NewUsageRecord } from '../db/schema.ts';
import { param, row, type Template, template } from '../db/statement-template.ts';
import { recordUsageStatement, USAGE_COLUMNS } from '../usage/usage-store.ts';

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
   * Optional, one round trip: the usual settlement of a hold that is still open — close it,
   * release it, charge, write the entry (its balance_after filled in) and the usage record.
   * False when the hold was not open, and then nothing was written.
   */
  settleOpenHold?(input: SettleOpenHold): Promise<boolean>;
}

export type SettleOpenHold = {
  hold: Hold;
  close: HoldStatus;
  now: number;
  charge: number;
  entry: LedgerEntry;
  usage: NewUsageRecord;
};

// Each statement is written once, with Kysely, as a template with named parameters; it is
// compiled once per database when an executor is made, and run by a small runner per driver:
// prepared better-sqlite3 statements (synchronous, inside the SQLite batch's transaction) or the
// transaction's own connection (PostgreSQL, through Kysely, parameterised).

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
const USAGE_COLUMN_LIST = USAGE_COLUMNS.join(', ');
const HOLD_COLUMNS = [
  'id',
  'account_id',
  'request_id',
  'amount_micros',
  'status',
  'created_at',
  'expires_at',
  'closed_at',
] as const satisfies readonly (keyof Hold)[];

/** The ledger's statements for one database, compiled. `db` is only asked to compile, never to run. */
export type LedgerTemplates = ReturnType<typeof compileLedgerStatements>;

/**
 * On PostgreSQL reading the balances locks the account row until COMMIT, so that what a late
 * settlement computes from them (the charge it can still afford) still holds when it writes,
 * whatever other transactions commit meanwhile. SQLite has one writer at a time.
 */
export function compileLedgerStatements(db: Db, dialect: Dialect) {
  const balances = db.selectFrom('accounts').select(['balance_micros', 'held_micros']).where('id', '=', param<string>('account'));
  return {
    hold: template(
      db
        .updateTable('accounts')
        .set((eb) => ({ held_micros: eb('held_micros', '+', param<number>('amount_micros')) }))
        .where('id', '=', param<string>('account_id'))
        .where((eb) => eb(eb('balance_micros', '-', eb.ref('held_micros')), '>=', param<number>('amount_micros'))),
    ),
    insertHold: template(db.insertInto('holds').values(row(HOLD_COLUMNS))),
    balances: template(dialect === 'postgres' ? balances.forUpdate() : balances),
    closeHold: template(
      db
        .updateTable('holds')
        .set({ status: param<HoldStatus>('status'), closed_at: param<number>('now') })
        .where('id', '=', param<string>('hold'))
        .where('status', '=', 'open'),
    ),
    adjust: template(
      db
        .updateTable('accounts')
        .set((eb) => ({
          balance_micros: eb('balance_micros', '+', param<number>('balance')),
          held_micros: eb('held_micros', '+', param<number>('held')),
        }))
        .where('id', '=', param<string>('account'))
        .returning('balance_micros'),
    ),
    insertEntry: template(db.insertInto('ledger_entries').values(row(ENTRY_COLUMNS))),
    // The usage capability's own statement, run in the ledger's transaction.
    insertUsage: recordUsageStatement(db),
    findGrant: template(
      db
        .selectFrom('ledger_entries')
        .select(['account_id', 'amount_micros', 'balance_after_micros'])
        .where('idempotency_key', '=', param<string>('key')),
    ),
  };
}

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

/** A value as a PostgreSQL literal. Only the types the ledger writes; anything else is a bug. */
export function pgLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not an integer: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return loadPg().escapeLiteral(v);
  throw new TypeError(`no PostgreSQL literal for a ${typeof v}`);
}

/** A statement PostgreSQL keeps prepared on a connection, by name. */
export type NamedStatement = { name: string; text: string };
/** One execution of a fused statement. */
export type FusedCall = { statement: NamedStatement; params: readonly unknown[] };

const USAGE_TYPES: Record<(typeof USAGE_COLUMNS)[number], 'text' | 'integer' | 'bigint'> = {
  id: 'text',
  account_id: 'text',
  key_id: 'text',
  model: 'text',
  backend: 'text',
  mode: 'text',
  stream: 'integer',
  status: 'text',
  http_status: 'integer',
  finish_reason: 'text',
  prompt_tokens: 'integer',
  completion_tokens: 'integer',
  cost_micros: 'bigint',
  hold_micros: 'bigint',
  error_code: 'text',
  latency_ms: 'integer',
  created_at: 'bigint',
};

/**
 * PostgreSQL's two fused statements: each either does all of its writes or none (and then
 * returns no row), which is what lets the batch executor run them ahead of a batch's other
 * statements (ledger-executor.ts). Parameters carry explicit types so that the same text serves
 * as a prepared statement and as a parameterised query.
 */
const HOLD_AND_INSERT: NamedStatement = {
  name: 'bizora_hold_and_insert',
  text: `WITH held AS (
      UPDATE accounts SET held_micros = held_micros + $4::bigint
      WHERE id = $2::text AND balance_micros - held_micros >= $4::bigint
      RETURNING id)
    INSERT INTO holds (id, account_id, request_id, amount_micros, status, created_at, expires_at, closed_at)
    SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::bigint, $7::bigint, NULL FROM held
    RETURNING id`,
};

const SETTLE_OPEN_HOLD: NamedStatement = {
  name: 'bizora_settle_open_hold',
  text: `WITH closed AS (
      UPDATE holds SET status = $1::text, closed_at = $2::bigint
      WHERE id = $3::text AND status = 'open'
      RETURNING account_id, amount_micros),
    account AS (
      UPDATE accounts a SET held_micros = a.held_micros - c.amount_micros, balance_micros = a.balance_micros - $4::bigint
      FROM closed c WHERE a.id = c.account_id
      RETURNING a.balance_micros),
    entry AS (
      INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, reason, hold_micros, created_at)
      SELECT $5::text, $6::text, $7::text, $8::bigint, account.balance_micros, $9::text, $10::text, $11::bigint, $12::bigint FROM account
      RETURNING id)
    INSERT INTO usage_records (${USAGE_COLUMN_LIST})
    SELECT ${USAGE_COLUMNS.map((c, i) => `$${13 + i}::${USAGE_TYPES[c]}`).join(', ')} FROM entry
    RETURNING id`,
};

export const PG_FUSED_STATEMENTS: readonly NamedStatement[] = [HOLD_AND_INSERT, SETTLE_OPEN_HOLD];

export const fusedCall = {
  holdAndInsert: (h: Hold): FusedCall => ({
    statement: HOLD_AND_INSERT,
    params: [h.id, h.account_id, h.request_id, h.amount_micros, h.status, h.created_at, h.expires_at],
  }),
  settleOpenHold: ({ hold, close, now, charge, entry: e, usage }: SettleOpenHold): FusedCall => ({
    statement: SETTLE_OPEN_HOLD,
    params: [
      ...[close, now, hold.id, charge],
      ...[e.id, e.account_id, e.kind, e.amount_micros, e.request_id, e.reason, e.hold_micros, e.created_at],
      ...USAGE_COLUMNS.map((c) => usage[c] ?? null),
    ],
  }),
};

/** PREPARE text for a connection. */
export const prepareSql = (s: NamedStatement): string => `PREPARE ${s.name} AS ${s.text}`;
/** EXECUTE text of a call, with its parameters as literals, for a connection that prepared it. */
export const executeSql = (c: FusedCall): string => `EXECUTE ${c.statement.name}(${c.params.map(pgLiteral).join(', ')})`;

/**
 * PostgreSQL inside one Kysely transaction: Kysely's statements with the two fused ones in place.
 * The batch executor runs the fused statements of a batch together and only the rest through this.
 */
export function postgresStatements(t: LedgerTemplates, tx: Tx): Required<Statements> & LedgerStatements {
  const wrote = async (c: FusedCall) => (await tx.executeQuery(CompiledQuery.raw(c.statement.text, [...c.params]))).rows.length === 1;
  return branded({
    ...transactionStatements(t, tx),
    holdAndInsert: (h: Hold) => wrote(fusedCall.holdAndInsert(h)),
    settleOpenHold: (input: SettleOpenHold) => wrote(fusedCall.settleOpenHold(input)),
  });
}
