// Reading the ledger back: an account's entries, newest first, a page at a time (the ledger's
// operations, which write it, are in ledger.ts).
import type { Db } from '../db/connection.ts';
import type { LedgerEntry } from '../db/schema.ts';

/** Up to `limit` entries of the account, newest first, older than the entry `before` when given. */
export function listLedgerEntries(db: Db, accountId: string, page: { before?: string | undefined; limit: number }): Promise<LedgerEntry[]> {
  let q = db.selectFrom('ledger_entries').selectAll().where('account_id', '=', accountId).orderBy('id', 'desc').limit(page.limit);
  if (page.before) q = q.where('id', '<', page.before);
  return q.execute();
}
