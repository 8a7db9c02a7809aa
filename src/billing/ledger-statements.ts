// The handful of statements the ledger is made of, behind one interface with three
// implementations: Kysely (any database), prepared better-sqlite3 statements (SQLite in the
// server), and Kysely plus two fused all-or-nothing statements (PostgreSQL in the server). The
// ledger's logic (ledger.ts) is written once against this interface; the property tests run it
// on every implementation. A LedgerStatements object only exists inside a transaction
// (ledger-executor.ts), so nothing can move money outside one.
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import type { Tx } from '../db/connection.ts';
import type { Hold, HoldStatus, LedgerEntry, NewUsageRecord } from '../db/schema.ts';

export type Balances = { balance_micros: number; held_micros: number };

export interface LedgerStatements {
  /** held += amount, only if the available balance covers it; whether it did. */
  holdIfAvailable(accountId: string, amount: number): Promise<boolean>;
  balances(accountId: string): Promise<Balances | undefined>;
  insertHold(hold: Hold): Promise<void>;
  /** Moves an open hold to `status`; whether this call was the one that closed it. */
  closeHold(holdId: string, status: HoldStatus, now: number): Promise<boolean>;
  /** balance += balance, held += held; the balance after, or undefined when there is no such account. */
  adjust(accountId: string, change: { balance: number; held: number }): Promise<number | undefined>;
  insertEntry(entry: LedgerEntry): Promise<void>;
  insertUsage(record: NewUsageRecord): Promise<void>;
  /**
   * Optional, where a database can do it in one round trip (PostgreSQL): hold and insert the
   * hold if the available balance covers it; whether it did.
   */
  holdAndInsert?(hold: Hold): Promise<boolean>;
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

export function kyselyStatements(tx: Tx): LedgerStatements {
  return {
    async holdIfAvailable(accountId, amount) {
      const r = await tx
        .updateTable('accounts')
        .set((eb) => ({ held_micros: eb('held_micros', '+', amount) }))
        .where('id', '=', accountId)
        .where((eb) => eb(eb('balance_micros', '-', eb.ref('held_micros')), '>=', amount))
        .executeTakeFirst();
      return r.numUpdatedRows === 1n;
    },
    balances: (accountId) =>
      tx.selectFrom('accounts').select(['balance_micros', 'held_micros']).where('id', '=', accountId).executeTakeFirst(),
    async insertHold(hold) {
      await tx.insertInto('holds').values(hold).execute();
    },
    async closeHold(holdId, status, now) {
      const r = await tx
        .updateTable('holds')
        .set({ status, closed_at: now })
        .where('id', '=', holdId)
        .where('status', '=', 'open')
        .executeTakeFirst();
      return r.numUpdatedRows === 1n;
    },
    async adjust(accountId, change) {
      const row = await tx
        .updateTable('accounts')
        .set((eb) => ({ balance_micros: eb('balance_micros', '+', change.balance), held_micros: eb('held_micros', '+', change.held) }))
        .where('id', '=', accountId)
        .returning('balance_micros')
        .executeTakeFirst();
      return row?.balance_micros;
    },
    async insertEntry(entry) {
      await tx.insertInto('ledger_entries').values(entry).execute();
    },
    async insertUsage(record) {
      await tx.insertInto('usage_records').values(record).execute();
    },
  };
}

const USAGE_COLUMNS = [
  'id',
  'account_id',
  'key_id',
  'model',
  'backend',
  'mode',
  'stream',
  'status',
  'http_status',
  'finish_reason',
  'prompt_tokens',
  'completion_tokens',
  'cost_micros',
  'hold_micros',
  'error_code',
  'latency_ms',
  'created_at',
] as const;
const USAGE_COLUMN_LIST = USAGE_COLUMNS.join(', ');

/** The same statements, prepared once on the SQLite connection and run synchronously. */
export function sqliteStatements(sqlite: BetterSqlite3.Database): LedgerStatements {
  const hold = sqlite.prepare('UPDATE accounts SET held_micros = held_micros + ? WHERE id = ? AND balance_micros - held_micros >= ?');
  const balances = sqlite.prepare('SELECT balance_micros, held_micros FROM accounts WHERE id = ?');
  const insertHold = sqlite.prepare(
    'INSERT INTO holds (id, account_id, request_id, amount_micros, status, created_at, expires_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const closeHold = sqlite.prepare("UPDATE holds SET status = ?, closed_at = ? WHERE id = ? AND status = 'open'");
  const adjust = sqlite.prepare(
    'UPDATE accounts SET balance_micros = balance_micros + ?, held_micros = held_micros + ? WHERE id = ? RETURNING balance_micros',
  );
  const insertEntry = sqlite.prepare(
    'INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, reason, hold_micros, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertUsage = sqlite.prepare(
    `INSERT INTO usage_records (${USAGE_COLUMN_LIST}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`,
  );
  return {
    holdIfAvailable: async (accountId, amount) => hold.run(amount, accountId, amount).changes === 1,
    balances: async (accountId) => balances.get(accountId) as Balances | undefined,
    async insertHold(h) {
      insertHold.run(h.id, h.account_id, h.request_id, h.amount_micros, h.status, h.created_at, h.expires_at, h.closed_at);
    },
    closeHold: async (holdId, status, now) => closeHold.run(status, now, holdId).changes === 1,
    adjust: async (accountId, change) =>
      (adjust.get(change.balance, change.held, accountId) as { balance_micros: number } | undefined)?.balance_micros,
    async insertEntry(e) {
      insertEntry.run(
        e.id,
        e.account_id,
        e.kind,
        e.amount_micros,
        e.balance_after_micros,
        e.request_id,
        e.reason,
        e.hold_micros,
        e.created_at,
      );
    },
    async insertUsage(u) {
      insertUsage.run(...USAGE_COLUMNS.map((c) => u[c] ?? null));
    },
  };
}

/** A value as a PostgreSQL literal. Only the types the ledger writes; anything else is a bug. */
export function pgLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not an integer: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return pg.escapeLiteral(v);
  throw new TypeError(`no PostgreSQL literal for a ${typeof v}`);
}

/** SQL text that literalSql inserts as it is: our own identifiers, never a value. */
class Raw {
  constructor(readonly text: string) {}
}

/** SQL text with every interpolated value rendered as a literal, and an array as a list of them. */
const literalSql = (parts: TemplateStringsArray, ...values: unknown[]): string =>
  parts.reduce((text, part, i) => {
    const v = values[i - 1];
    const rendered = v instanceof Raw ? v.text : Array.isArray(v) ? v.map(pgLiteral).join(', ') : pgLiteral(v);
    return text + rendered + part;
  });

/**
 * PostgreSQL's fused statements, as complete SQL text: the batch executor sends a batch of them
 * in one simple-protocol message, which PostgreSQL runs as one transaction in one round trip
 * (ledger-executor.ts). Each either does all of its writes or none (and then returns no row),
 * which is what lets the executor run them ahead of the batch's other statements.
 */
export const fusedSql = {
  holdAndInsert: (h: Hold): string => literalSql`
    WITH held AS (
      UPDATE accounts SET held_micros = held_micros + ${h.amount_micros}
      WHERE id = ${h.account_id} AND balance_micros - held_micros >= ${h.amount_micros}
      RETURNING id)
    INSERT INTO holds (id, account_id, request_id, amount_micros, status, created_at, expires_at, closed_at)
    SELECT ${h.id}, ${h.account_id}, ${h.request_id}, ${h.amount_micros}, ${h.status}, ${h.created_at}, ${h.expires_at}, NULL FROM held
    RETURNING id`,

  settleOpenHold: ({ hold, close, now, charge, entry: e, usage }: SettleOpenHold): string => literalSql`
    WITH closed AS (
      UPDATE holds SET status = ${close}, closed_at = ${now}
      WHERE id = ${hold.id} AND status = 'open'
      RETURNING account_id, amount_micros),
    account AS (
      UPDATE accounts a SET held_micros = a.held_micros - c.amount_micros, balance_micros = a.balance_micros - ${charge}
      FROM closed c WHERE a.id = c.account_id
      RETURNING a.balance_micros),
    entry AS (
      INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, reason, hold_micros, created_at)
      SELECT ${[e.id, e.account_id, e.kind, e.amount_micros]}, account.balance_micros, ${[e.request_id, e.reason, e.hold_micros, e.created_at]}
      FROM account
      RETURNING id)
    INSERT INTO usage_records (${new Raw(USAGE_COLUMN_LIST)})
    SELECT ${USAGE_COLUMNS.map((c) => usage[c])} FROM entry
    RETURNING id`,
};

/**
 * PostgreSQL inside one Kysely transaction: Kysely's statements plus the two fused ones. The
 * batch executor runs the fused statements of a batch together and only the rest through this.
 */
export function postgresStatements(tx: Tx): LedgerStatements {
  const wrote = async (text: string) => (await sql.raw<{ id: string }>(text).execute(tx)).rows.length === 1;
  return {
    ...kyselyStatements(tx),
    holdAndInsert: (h) => wrote(fusedSql.holdAndInsert(h)),
    settleOpenHold: (input) => wrote(fusedSql.settleOpenHold(input)),
  };
}
