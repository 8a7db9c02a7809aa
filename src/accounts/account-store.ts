// The accounts table: create and find. Balances change only through billing/ledger.ts.

import type { Db } from '../db/connection.ts';
import type { Account } from '../db/schema.ts';
import { newId } from '../lib/ids.ts';
import { floorCents } from '../lib/money.ts';

export type PublicAccount = Omit<Account, 'password_hash'>;

const publicColumns = ['id', 'email', 'name', 'role', 'balance_micros', 'held_micros', 'created_at'] as const;

/** An account's money in whole cents, rounded down, as every surface (API, dashboard, CLI) shows it. */
export const balanceCents = (a: Pick<Account, 'balance_micros' | 'held_micros'>) => ({
  balance_cents: floorCents(a.balance_micros),
  available_cents: floorCents(a.balance_micros - a.held_micros),
  held_cents: floorCents(a.held_micros),
});

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();
export const isEmail = (s: string): boolean => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s);

/**
 * Creates an account. The first account on a database becomes its administrator, however it is
 * made (dashboard sign-up, the CLI, an administrator): creating it and claiming the one
 * first_admin row happen in one transaction, and the row's primary key decides between
 * concurrent first sign-ups (on PostgreSQL the second insert waits for the first COMMIT, then
 * does nothing). `role: 'admin'` makes an administrator in any case; `'member'` never claims.
 * An email taken already fails on the unique index (see isUniqueViolation).
 */
export async function createAccount(
  db: Db,
  input: { email: string; name?: string | null; now: number; role?: 'admin' | 'member'; passwordHash?: string | null },
): Promise<PublicAccount> {
  const id = newId('acct', input.now);
  return db.transaction().execute(async (tx) => {
    let role = input.role ?? 'member';
    if (input.role !== 'member') {
      const claim = await tx
        .insertInto('first_admin')
        .values({ id: 1, account_id: id, created_at: input.now })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      if (Number(claim.numInsertedOrUpdatedRows ?? 0n) === 1) role = 'admin';
    }
    const row: Account = {
      id,
      email: normalizeEmail(input.email),
      name: input.name ?? null,
      role,
      password_hash: input.passwordHash ?? null,
      balance_micros: 0,
      held_micros: 0,
      created_at: input.now,
    };
    await tx.insertInto('accounts').values(row).execute();
    const { password_hash: _ph, ...rest } = row;
    return rest;
  });
}

/** Whether a database error is a unique-index violation (an email taken by a concurrent insert). */
export const isUniqueViolation = (err: unknown): boolean => {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
};

/** Finds an account by id (`acct_…`) or email. */
/** The id and password hash of the account with this (normalised) email, for a sign-in. */
export function findPasswordHash(db: Db, email: string): Promise<{ id: string; password_hash: string | null } | undefined> {
  return db.selectFrom('accounts').select(['id', 'password_hash']).where('email', '=', email).executeTakeFirst();
}

/** Every account, oldest first (the administrators' list), at most `limit`. */
export function listAccounts(db: Db, limit: number): Promise<PublicAccount[]> {
  return db.selectFrom('accounts').select(publicColumns).orderBy('created_at', 'asc').limit(limit).execute();
}

/** A page of accounts in id order (ids start with their creation time), after the id `after`. */
export function pageAccounts(db: Db, limit: number, after?: string): Promise<PublicAccount[]> {
  let q = db.selectFrom('accounts').select(publicColumns).orderBy('id', 'asc').limit(limit);
  if (after) q = q.where('id', '>', after);
  return q.execute();
}

export function findAccount(db: Db, idOrEmail: string): Promise<PublicAccount | undefined> {
  const q = db.selectFrom('accounts').select(publicColumns);
  return (
    idOrEmail.startsWith('acct_') ? q.where('id', '=', idOrEmail) : q.where('email', '=', normalizeEmail(idOrEmail))
  ).executeTakeFirst();
}
