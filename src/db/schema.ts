// Table types for Kysely. Money is integer micro-USD, time is integer epoch milliseconds; both
// are BIGINT in PostgreSQL (parsed to JS numbers in connection.ts; 2^53 micro-USD is $9 billion).
import type { Insertable, Selectable } from 'kysely';

export interface AccountsTable {
  id: string;
  email: string;
  name: string | null;
  role: 'admin' | 'member';
  password_hash: string | null;
  balance_micros: number;
  /** Sum of the open holds; the available balance is balance_micros - held_micros. */
  held_micros: number;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  name: string;
  /** Hex SHA-256 of the full key; the key itself is never stored. */
  hash: string;
  preview: string;
  mode: 'live' | 'test';
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  expires_at: number | null;
  /** Limits (null: none): requests and tokens per minute, requests at once. */
  rpm: number | null;
  tpm: number | null;
  max_concurrency: number | null;
  /** Spend limit in micro-USD per spend_period (the key's spend is in key_spend). */
  spend_limit_micros: number | null;
  spend_period: SpendPeriod | null;
  /** JSON array of the model ids the key may call; null: every model. */
  models: string | null;
  /** A rotated key's former hash, valid until previous_valid_until. */
  previous_hash: string | null;
  previous_valid_until: number | null;
}

export type SpendPeriod = 'day' | 'month' | 'total';

/** Management keys (sk_admin_…): the operator's programs, on /v1/admin/ only. */
export interface AdminKeysTable {
  id: string;
  name: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  preview: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/**
 * What a key with a spend limit has spent in its current period (which began at window_start)
 * and holds for its requests in flight. Written only in the ledger's transactions.
 */
export interface KeySpendTable {
  key_id: string;
  window_start: number;
  spent_micros: number;
  held_micros: number;
}

export type HoldStatus = 'open' | 'settled' | 'released' | 'expired';

export interface HoldsTable {
  id: string;
  account_id: string;
  request_id: string;
  amount_micros: number;
  status: HoldStatus;
  created_at: number;
  expires_at: number;
  closed_at: number | null;
  /** The key whose spend limit the hold counts against; null for a key without one. */
  key_id: string | null;
}

export type LedgerKind = 'grant' | 'usage' | 'release' | 'adjustment';

export interface LedgerEntriesTable {
  id: string;
  account_id: string;
  kind: LedgerKind;
  /** Signed: grants are positive, usage charges negative. */
  amount_micros: number;
  balance_after_micros: number;
  request_id: string | null;
  reason: string | null;
  /** For usage and release entries: the amount that had been held for the request. */
  hold_micros: number | null;
  /** For grants made with an idempotency key (unique): a retry with the same key finds this entry. */
  idempotency_key: string | null;
  created_at: number;
}

/** One row at most: the account that became the platform's first administrator. */
export interface FirstAdminTable {
  id: number;
  account_id: string;
  created_at: number;
}

export interface SessionsTable {
  /** Hex SHA-256 of the session token in the cookie. */
  id: string;
  account_id: string;
  created_at: number;
  expires_at: number;
}

export type UsageStatus = 'succeeded' | 'failed' | 'cancelled';

export interface UsageRecordsTable {
  /** The request id (`req_…`), also sent as x-request-id. */
  id: string;
  account_id: string;
  key_id: string;
  model: string;
  backend: string;
  mode: 'live' | 'test';
  stream: number;
  status: UsageStatus;
  http_status: number;
  finish_reason: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  hold_micros: number;
  error_code: string | null;
  latency_ms: number;
  created_at: number;
}

export interface DB {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  key_spend: KeySpendTable;
  admin_keys: AdminKeysTable;
  holds: HoldsTable;
  ledger_entries: LedgerEntriesTable;
  usage_records: UsageRecordsTable;
  sessions: SessionsTable;
  first_admin: FirstAdminTable;
}

export type Account = Selectable<AccountsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type Hold = Selectable<HoldsTable>;
export type LedgerEntry = Selectable<LedgerEntriesTable>;
export type UsageRecord = Selectable<UsageRecordsTable>;
export type NewUsageRecord = Insertable<UsageRecordsTable>;
