// usage_records: one row per chat completion request that held money or reached a backend,
// written in the transaction that settles the request: the ledger runs recordUsage's statement
// (alone, or as the last part of PostgreSQL's fused settlement). Here: that statement, finding
// records, the per-day totals, and the completion id every record answers to.
import { type Expression, type QueryCreator, type SqlBool, sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { DB, NewUsageRecord, UsageRecord } from '../db/schema.ts';
import { row, rowSelection } from '../db/statement-template.ts';

/** The columns of a usage record, in the order every statement that writes one lists them. */
export const USAGE_COLUMNS = [
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
] as const satisfies readonly (keyof NewUsageRecord)[];

/**
 * The statement that writes one usage record, a whole row from the parameters `<prefix>.<column>`,
 * for the ledger to compile and run in its transaction. With `when`, the row is written only if
 * that condition holds (a part of a larger statement: PostgreSQL's fused settlement).
 */
export function recordUsage(qc: Pick<QueryCreator<DB>, 'insertInto' | 'selectNoFrom'>, prefix?: string, when?: Expression<SqlBool>) {
  const insert = qc.insertInto('usage_records');
  if (!when) return insert.values(row(USAGE_COLUMNS, prefix));
  return insert.columns(USAGE_COLUMNS).expression(qc.selectNoFrom(rowSelection(USAGE_COLUMNS, prefix)).where(when));
}

/** What each request was billed, by request id: for the ledger's check of its charges against the records. */
export const usageCosts = (db: Db) => db.selectFrom('usage_records').select(['id', 'cost_micros']);

export const DAY_MS = 86_400_000;
// Integer division on both databases: the UTC day number. A literal, not a parameter, so that
// PostgreSQL sees the SELECT and GROUP BY expressions as the same.
export const dayOf = sql<number>`created_at / ${sql.lit(DAY_MS)}`;

export type UsageFilter = { accountId: string; keyId?: string | undefined; model?: string | undefined };
export type DayTotals = { day: number; requests: number; promptTokens: number; completionTokens: number; costMicros: number };

function filtered(db: Db, f: UsageFilter) {
  let q = db.selectFrom('usage_records').where('account_id', '=', f.accountId);
  if (f.keyId) q = q.where('key_id', '=', f.keyId);
  if (f.model) q = q.where('model', '=', f.model);
  return q;
}

/** Requests, tokens and cost per UTC day number, from `firstDay` on; days without requests are absent. */
export async function dailyTotals(db: Db, f: UsageFilter, firstDay: number): Promise<DayTotals[]> {
  const rows = await filtered(db, f)
    .where('created_at', '>=', firstDay * DAY_MS)
    .select((eb) => [
      dayOf.as('day'),
      eb.fn.countAll<number>().as('requests'),
      eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
      eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
      eb.fn.sum<number>('cost_micros').as('cost_micros'),
    ])
    .groupBy(dayOf)
    .execute();
  return rows.map((d) => ({
    day: Number(d.day),
    requests: Number(d.requests),
    promptTokens: Number(d.prompt_tokens),
    completionTokens: Number(d.completion_tokens),
    costMicros: Number(d.cost_micros),
  }));
}

/** The most recent records, newest first. */
export function recentUsage(db: Db, f: UsageFilter, limit: number): Promise<UsageRecord[]> {
  return filtered(db, f).selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

// Completion ids are derived from request ids (`req_X` answers as `chatcmpl-X`), so either one
// finds the record through the primary key.
export const completionIdFor = (requestId: string): string => `chatcmpl-${requestId.slice('req_'.length)}`;
const requestIdOf = (id: string): string =>
  id.startsWith('chatcmpl-') ? `req_${id.slice('chatcmpl-'.length)}` : id.startsWith('resp_') ? `req_${id.slice('resp_'.length)}` : id;

/** One record of this account, by request id (`req_…`), completion id (`chatcmpl-…`) or response id (`resp_…`). */
export function findUsage(db: Db, accountId: string, id: string): Promise<UsageRecord | undefined> {
  return db
    .selectFrom('usage_records')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('id', '=', requestIdOf(id))
    .executeTakeFirst();
}
