// The handful of statements the ledger is made of, behind one interface with three
// implementations: Kysely (any database), prepared better-sqlite3 statements (SQLite in the
// server), and Kysely with PostgreSQL's hold and usual settlement each fused into one statement
// (PostgreSQL in the server). The ledger's logic (ledger.ts) is written once against this
// interface; the property tests run it on every implementation. A LedgerStatements object only
// exists inside a transaction (ledger-executor.ts), so nothing can move money outside one.
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import type { Tx } from '../db/connection.ts';
import { loadPg } from '../db/pg-driver.ts';
import type { Hold, HoldStatus, LedgerEntry, NewUsageRecord } from '../db/schema.ts';

export type Balances = { balance_micros: number; held_micros: number };
/** The entry a grant with an idempotency key wrote. */
export type GrantRecord = Pick<LedgerEntry, 'account_id' | 'amount_micros' | 'balance_after_micros'>;

export interface LedgerStatements {
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

/**
 * `lockRows` (PostgreSQL): reading the balances locks the account row until COMMIT, so that what
 * a late settlement computes from them (the charge it can still afford) still holds when it
 * writes, whatever other transactions commit meanwhile. SQLite has one writer at a time.
 */
export function kyselyStatements(tx: Tx, { lockRows = false } = {}): LedgerStatements {
  return {
    async holdAndInsert(hold) {
      const amount = hold.amount_micros;
      const r = await tx
        .updateTable('accounts')
        .set((eb) => ({ held_micros: eb('held_micros', '+', amount) }))
        .where('id', '=', hold.account_id)
        .where((eb) => eb(eb('balance_micros', '-', eb.ref('held_micros')), '>=', amount))
        .executeTakeFirst();
      if (r.numUpdatedRows !== 1n) return false;
      await tx.insertInto('holds').values(hold).execute();
      return true;
    },
    balances(accountId) {
      const q = tx.selectFrom('accounts').select(['balance_micros', 'held_micros']).where('id', '=', accountId);
      return (lockRows ? q.forUpdate() : q).executeTakeFirst();
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
    findGrant(idempotencyKey) {
      return tx
        .selectFrom('ledger_entries')
        .select(['account_id', 'amount_micros', 'balance_after_micros'])
        .where('idempotency_key', '=', idempotencyKey)
        .executeTakeFirst();
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
    'INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, reason, hold_micros, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const findGrant = sqlite.prepare('SELECT account_id, amount_micros, balance_after_micros FROM ledger_entries WHERE idempotency_key = ?');
  const insertUsage = sqlite.prepare(
    `INSERT INTO usage_records (${USAGE_COLUMN_LIST}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`,
  );
  return {
    async holdAndInsert(h) {
      if (hold.run(h.amount_micros, h.account_id, h.amount_micros).changes !== 1) return false;
      insertHold.run(h.id, h.account_id, h.request_id, h.amount_micros, h.status, h.created_at, h.expires_at, h.closed_at);
      return true;
    },
    balances: async (accountId) => balances.get(accountId) as Balances | undefined,
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
        e.idempotency_key,
        e.created_at,
      );
    },
    async insertUsage(u) {
      insertUsage.run(...USAGE_COLUMNS.map((c) => u[c] ?? null));
    },
    findGrant: async (idempotencyKey) => findGrant.get(idempotencyKey) as GrantRecord | undefined,
  };
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
export function postgresStatements(tx: Tx): Required<LedgerStatements> {
  const wrote = async (c: FusedCall) => (await tx.executeQuery(CompiledQuery.raw(c.statement.text, [...c.params]))).rows.length === 1;
  return {
    ...kyselyStatements(tx, { lockRows: true }),
    holdAndInsert: (h) => wrote(fusedCall.holdAndInsert(h)),
    settleOpenHold: (input) => wrote(fusedCall.settleOpenHold(input)),
  };
}
