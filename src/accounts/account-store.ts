// The accounts table: create and find. Balances change only through billing/ledger.ts.

import { floorCents } from '../billing/pricing.ts';
import type { Db } from '../db/connection.ts';
import type { Account } from '../db/schema.ts';
import { newId } from '../lib/ids.ts';

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

export async function createAccount(
  db: Db,
  input: { email: string; name?: string | null; now: number; role?: 'admin' | 'member'; passwordHash?: string | null },
): Promise<PublicAccount> {
  const row: Account = {
    id: newId('acct', input.now),
    email: normalizeEmail(input.email),
    name: input.name ?? null,
    role: input.role ?? 'member',
    password_hash: input.passwordHash ?? null,
    balance_micros: 0,
    held_micros: 0,
    created_at: input.now,
  };
  await db.insertInto('accounts').values(row).execute();
  const { password_hash: _ph, ...rest } = row;
  return rest;
}

/** Finds an account by id (`acct_…`) or email. */
export function findAccount(db: Db, idOrEmail: string): Promise<PublicAccount | undefined> {
  const q = db.selectFrom('accounts').select(publicColumns);
  return (
    idOrEmail.startsWith('acct_') ? q.where('id', '=', idOrEmail) : q.where('email', '=', normalizeEmail(idOrEmail))
  ).executeTakeFirst();
}
