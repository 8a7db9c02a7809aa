// usage_records: one row per chat completion request that reached a backend (or was refused
// by it), written in the same transaction that settles the request's hold.
import type { Db, Tx } from '../db/connection.ts';
import type { NewUsageRecord, UsageRecord } from '../db/schema.ts';

export async function insertUsage(tx: Tx | Db, record: NewUsageRecord): Promise<void> {
  await tx.insertInto('usage_records').values(record).execute();
}

// Completion ids are derived from request ids (`req_X` answers as `chatcmpl-X`), so either one
// finds the record through the primary key.
export const completionIdFor = (requestId: string): string => `chatcmpl-${requestId.slice('req_'.length)}`;
const requestIdOf = (id: string): string => (id.startsWith('chatcmpl-') ? `req_${id.slice('chatcmpl-'.length)}` : id);

/** One record of this account, by request id (`req_…`) or completion id (`chatcmpl-…`). */
export function findUsage(db: Db, accountId: string, id: string): Promise<UsageRecord | undefined> {
  return db
    .selectFrom('usage_records')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('id', '=', requestIdOf(id))
    .executeTakeFirst();
}
