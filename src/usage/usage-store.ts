// usage_records: one row per chat completion request that held money or reached a backend,
// written by the ledger (ledger-statements.ts) in the transaction that settles the request.
// Here: finding a record, and the completion id every record answers to.
import type { Db } from '../db/connection.ts';
import type { UsageRecord } from '../db/schema.ts';

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
