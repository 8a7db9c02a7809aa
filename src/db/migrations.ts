// Schema migrations for both databases, written once with Kysely's schema builder (portable
// types only: text, bigint, integer). Applied by `bizora migrate` and at start-up.
import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import type { DB } from './schema.ts';

const m001: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('accounts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text')
      .addColumn('role', 'text', (c) => c.notNull().defaultTo('member'))
      .addColumn('password_hash', 'text')
      .addColumn('balance_micros', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('held_micros', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      // The last line of defence for "no account below zero": even a bug cannot commit it.
      .addCheckConstraint('accounts_balance_nonnegative', sql`balance_micros >= 0`)
      .addCheckConstraint('accounts_holds_covered', sql`held_micros >= 0 AND held_micros <= balance_micros`)
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('preview', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('expires_at', 'bigint')
      .execute();
    await db.schema.createIndex('api_keys_account').on('api_keys').columns(['account_id', 'created_at']).execute();

    await db.schema
      .createTable('holds')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('request_id', 'text', (c) => c.notNull().unique())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('closed_at', 'bigint')
      .addCheckConstraint('holds_amount_positive', sql`amount_micros > 0`)
      .execute();
    await db.schema.createIndex('holds_open_expiry').on('holds').columns(['status', 'expires_at']).execute();

    await db.schema
      .createTable('ledger_entries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('amount_micros', 'bigint', (c) => c.notNull())
      .addColumn('balance_after_micros', 'bigint', (c) => c.notNull())
      .addColumn('request_id', 'text')
      .addColumn('reason', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ledger_account').on('ledger_entries').columns(['account_id', 'id']).execute();
    // A request is charged at most once, whatever retries or races happen.
    await db.schema.createIndex('ledger_one_charge_per_request').on('ledger_entries').column('request_id').unique().execute();

    await db.schema
      .createTable('usage_records')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('completion_id', 'text', (c) => c.notNull())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id'))
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('backend', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('stream', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('http_status', 'integer', (c) => c.notNull())
      .addColumn('finish_reason', 'text')
      .addColumn('prompt_tokens', 'integer', (c) => c.notNull())
      .addColumn('completion_tokens', 'integer', (c) => c.notNull())
      .addColumn('cost_micros', 'bigint', (c) => c.notNull())
      .addColumn('hold_micros', 'bigint', (c) => c.notNull())
      .addColumn('error_code', 'text')
      .addColumn('latency_ms', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('usage_account_time').on('usage_records').columns(['account_id', 'created_at']).execute();
    await db.schema.createIndex('usage_completion').on('usage_records').column('completion_id').execute();
  },
};

const m002: Migration = {
  async up(db: Kysely<unknown>) {
    // Dashboard sessions; the cookie holds a random token, the table only its SHA-256.
    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sessions_account').on('sessions').column('account_id').execute();
    // The ledger shows holds too: a usage charge records what was held, and a hold released
    // without a charge (backend failure, expiry) is a zero-amount 'release' entry.
    await db.schema.alterTable('ledger_entries').addColumn('hold_micros', 'bigint').execute();
    await db.schema.dropIndex('ledger_one_charge_per_request').execute();
    await db.schema
      .createIndex('ledger_one_charge_per_request')
      .on('ledger_entries')
      .column('request_id')
      .unique()
      .where(sql.ref('kind'), '=', 'usage')
      .execute();
  },
};

// Fewer index writes per request (measured in bench/README.md): a completion id is found
// through the request id it is derived from, and only open holds need an expiry index.
const m003: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.dropIndex('usage_completion').execute();
    await db.schema.dropIndex('holds_open_expiry').execute();
    await db.schema.createIndex('holds_open_expiry').on('holds').column('expires_at').where(sql.ref('status'), '=', 'open').execute();
  },
};

// A completion id is derived from its request id (usage-store.ts), so it is not stored.
const m004: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('usage_records').dropColumn('completion_id').execute();
  },
};

// Operator safety (issue 10): idempotent credit grants, the first administrator decided by one
// row, expired sessions found by an index.
const m005: Migration = {
  async up(db: Kysely<unknown>) {
    // A grant made with an idempotency key is made once: a retry finds the first grant's entry.
    await db.schema.alterTable('ledger_entries').addColumn('idempotency_key', 'text').execute();
    await db.schema
      .createIndex('ledger_grant_idempotency')
      .on('ledger_entries')
      .column('idempotency_key')
      .unique()
      .where(sql.ref('idempotency_key'), 'is not', null)
      .execute();
    // At most one row (id = 1): the account that became the first administrator. Inserting it
    // is the atomic "am I first?" (concurrent first sign-ups: one insert wins, the other finds it).
    await db.schema
      .createTable('first_admin')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addCheckConstraint('first_admin_single_row', sql`id = 1`)
      .execute();
    // A database with accounts already has had its first account: the claim is taken (by its
    // oldest administrator, else its oldest account), as the old "no accounts yet" rule had it.
    await sql`INSERT INTO first_admin (id, account_id, created_at)
      SELECT 1, id, created_at FROM accounts ORDER BY CASE WHEN role = 'admin' THEN 0 ELSE 1 END, created_at, id LIMIT 1`.execute(db);
    await db.schema.createIndex('sessions_expiry').on('sessions').column('expires_at').execute();
  },
};

// Keys an operator can govern (issue 13): limits, a model allowlist, rotation with a grace, the
// spend of keys with a spend limit (kept in the ledger's transactions beside the balance), and
// management keys for the operator's own programs.
const m006: Migration = {
  async up(db: Kysely<unknown>) {
    let keys = db.schema.alterTable('api_keys');
    for (const column of ['rpm', 'tpm', 'max_concurrency'] as const) {
      await keys.addColumn(column, 'integer').execute();
      keys = db.schema.alterTable('api_keys');
    }
    await keys.addColumn('spend_limit_micros', 'bigint').execute();
    await db.schema.alterTable('api_keys').addColumn('spend_period', 'text').execute();
    await db.schema.alterTable('api_keys').addColumn('models', 'text').execute();
    await db.schema.alterTable('api_keys').addColumn('previous_hash', 'text').execute();
    await db.schema.alterTable('api_keys').addColumn('previous_valid_until', 'bigint').execute();
    await db.schema.createIndex('api_keys_previous_hash').on('api_keys').column('previous_hash').unique().execute();
    await db.schema.alterTable('holds').addColumn('key_id', 'text').execute();
    await db.schema
      .createTable('key_spend')
      .addColumn('key_id', 'text', (c) => c.primaryKey().references('api_keys.id'))
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('spent_micros', 'bigint', (c) => c.notNull())
      .addColumn('held_micros', 'bigint', (c) => c.notNull())
      .addCheckConstraint('key_spend_nonnegative', sql`spent_micros >= 0 AND held_micros >= 0`)
      .execute();
    await db.schema
      .createTable('admin_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('preview', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .execute();
  },
};

export const MIGRATIONS: Record<string, Migration> = {
  '001_core': m001,
  '002_dashboard': m002,
  '003_lean_indexes': m003,
  '004_derived_completion_id': m004,
  '005_operator_safety': m005,
  '006_key_governance': m006,
};

/** Applies pending migrations; returns the names applied. Throws with the failing migration. */
// Migrations see the database as schema-less (Kysely<unknown>); callers pass their typed one.
export async function migrateToLatest(db: Kysely<DB>): Promise<string[]> {
  const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider: { getMigrations: async () => MIGRATIONS } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
