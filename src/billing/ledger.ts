// The money. Balances live in accounts.balance_micros; every change to a balance is one ledger
// entry written in the same transaction, so the entries of an account always sum to its
// balance. Open holds reserve part of a balance for requests in flight; accounts.held_micros is
// their sum. Every function that moves money takes LedgerStatements, which exist only inside a
// transaction (ledger-executor.ts): the type system refuses a call outside one. Expected
// outcomes (insufficient balance, hold already closed) are values.
import type { Db } from '../db/connection.ts';
import type { Hold, LedgerEntry, LedgerKind, NewUsageRecord } from '../db/schema.ts';
import type { SpendLimit } from '../keys/key-limits.ts';
import { newId } from '../lib/ids.ts';
import { usageCosts } from '../usage/usage-store.ts';
import type { LedgerExecutor } from './ledger-executor.ts';
import type { GrantRecord, KeySpendRow, LedgerStatements } from './ledger-statements.ts';

type EntryInput = {
  accountId: string;
  kind: LedgerKind;
  amount: number;
  balanceAfter: number;
  requestId?: string | null;
  reason?: string | null;
  holdMicros?: number | null;
  idempotencyKey?: string | null;
  now: number;
};

const entryRow = (e: EntryInput): LedgerEntry => ({
  id: newId('le', e.now),
  account_id: e.accountId,
  kind: e.kind,
  amount_micros: e.amount,
  balance_after_micros: e.balanceAfter,
  request_id: e.requestId ?? null,
  reason: e.reason ?? null,
  hold_micros: e.holdMicros ?? null,
  idempotency_key: e.idempotencyKey ?? null,
  created_at: e.now,
});

const addEntry = (s: LedgerStatements, e: EntryInput): Promise<void> => s.insertEntry(entryRow(e));

type GrantInput = { accountId: string; micros: number; reason?: string | null; now: number };

/** Adds credit. Returns the new balance, or null if the account does not exist. */
export async function grantCredit(s: LedgerStatements, input: GrantInput & { idempotencyKey?: string | null }): Promise<number | null> {
  if (!Number.isSafeInteger(input.micros) || input.micros <= 0) throw new RangeError('a grant must be a positive integer');
  const balance = await s.adjust(input.accountId, { balance: input.micros, held: 0 });
  if (balance === undefined) return null;
  await addEntry(s, {
    accountId: input.accountId,
    kind: 'grant',
    amount: input.micros,
    balanceAfter: balance,
    reason: input.reason ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    now: input.now,
  });
  return balance;
}

export type IdempotentGrantResult =
  | { ok: true; replayed: boolean; accountId: string; micros: number; balanceAfterMicros: number }
  | { ok: false; reason: 'no_account' | 'key_reused' };

const replayOf = (first: GrantRecord, input: GrantInput): IdempotentGrantResult =>
  first.account_id === input.accountId && first.amount_micros === input.micros
    ? { ok: true, replayed: true, accountId: first.account_id, micros: first.amount_micros, balanceAfterMicros: first.balance_after_micros }
    : { ok: false, reason: 'key_reused' };

/**
 * A grant made at most once per idempotency key: the same key again (a retry, a double click)
 * answers with the first grant (its amount and the balance right after it) and grants nothing;
 * the same key for another account or amount is refused. On PostgreSQL reading the balances
 * locks the account's row, so a concurrent grant with the same key waits for the first one's
 * COMMIT and then finds its entry; SQLite has one writer at a time.
 */
export async function grantCreditOnce(s: LedgerStatements, input: GrantInput & { idempotencyKey: string }): Promise<IdempotentGrantResult> {
  const account = await s.balances(input.accountId);
  const first = await s.findGrant(input.idempotencyKey);
  if (first) return replayOf(first, input);
  if (!account) return { ok: false, reason: 'no_account' };
  const balance = await grantCredit(s, input);
  if (balance === null) return { ok: false, reason: 'no_account' };
  return { ok: true, replayed: false, accountId: input.accountId, micros: input.micros, balanceAfterMicros: balance };
}

/**
 * grantCreditOnce through an executor. Grants racing with one key for different accounts lock
 * different rows: the unique index on the key lets one commit and fails the other, which then
 * finds the winner's entry and answers as a replay or a reused key.
 */
export async function grantCreditIdempotently(
  ledger: LedgerExecutor,
  input: GrantInput & { idempotencyKey: string },
): Promise<IdempotentGrantResult> {
  try {
    return await ledger.run((s) => grantCreditOnce(s, input));
  } catch (err) {
    const first = await ledger.run((s) => s.findGrant(input.idempotencyKey));
    if (!first) throw err;
    return replayOf(first, input);
  }
}

export type ReserveResult =
  | { ok: true; hold: Hold }
  | { ok: false; reason: 'insufficient'; availableMicros: number }
  | { ok: false; reason: 'key_spend_limit'; availableMicros: number };

/** A key's spend limit, for a hold: the limit, and when its current period began (0 for a total). */
export type KeySpendLimit = SpendLimit;

/** What a key's spend row counts against its limit in the period that began at `window`: spent in it, and held. */
export const spendUsed = (spend: KeySpendRow | undefined, window: number): number =>
  spend ? (spend.window_start < window ? 0 : spend.spent_micros) + spend.held_micros : 0;

/**
 * Holds `amountMicros` of the account's available balance for one request, in one conditional
 * UPDATE: the row lock (PostgreSQL) or the single writer (SQLite) makes check-and-hold atomic, so
 * no interleaving of concurrent requests can hold more than the balance. A key with a spend limit
 * is held against it first, the same way (its key_spend row's lock), in the same transaction.
 */
export async function reserve(
  s: LedgerStatements,
  input: { accountId: string; requestId: string; amountMicros: number; now: number; ttlMs: number; keySpend?: KeySpendLimit | null },
): Promise<ReserveResult> {
  const amount = input.amountMicros;
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError('a hold must be a positive integer');
  const limit = input.keySpend;
  const hold: Hold = {
    id: newId('hold', input.now),
    account_id: input.accountId,
    request_id: input.requestId,
    amount_micros: amount,
    status: 'open',
    created_at: input.now,
    expires_at: input.now + input.ttlMs,
    closed_at: null,
    key_id: limit?.keyId ?? null,
  };
  const keySpend = limit && { key: limit.keyId, window: limit.window, amount, limit: limit.limitMicros };
  if (keySpend && (amount > keySpend.limit || !(await s.holdKeySpend(keySpend)))) {
    const used = spendUsed(await s.keySpend(keySpend.key), keySpend.window);
    return { ok: false, reason: 'key_spend_limit', availableMicros: Math.max(0, keySpend.limit - used) };
  }
  if (!(await s.holdAndInsert(hold))) {
    // The key's hold goes with the account's: nothing of this request is held.
    if (keySpend) await s.settleKeySpend({ key: keySpend.key, window: keySpend.window, held: amount, charge: 0 });
    const acct = await s.balances(input.accountId);
    return { ok: false, reason: 'insufficient', availableMicros: acct ? Math.max(0, acct.balance_micros - acct.held_micros) : 0 };
  }
  return { ok: true, hold };
}

export type SettleResult = { chargedMicros: number; holdWasOpen: boolean };

/**
 * Closes a hold at the actual cost and writes the usage record, in the caller's transaction.
 * Exactly once: only the transaction that flips the hold from 'open' releases it, and the usage
 * record's primary key (the request id) refuses a second settlement. The charge never exceeds
 * the hold. If the hold was already closed (the sweeper expired it), the charge is limited to
 * what the account has available, so a late settlement cannot go below zero. A cost of 0 with
 * `close: 'released'` is the release of a request that produced nothing.
 */
export async function settle(
  s: LedgerStatements,
  input: {
    hold: Hold;
    costMicros: number;
    now: number;
    close: 'settled' | 'released';
    usage: NewUsageRecord;
    /** The key's spend limit now (a key-limited hold): when the period the charge counts in began, and the limit. */
    keySpend?: Omit<KeySpendLimit, 'keyId'> | null;
  },
): Promise<SettleResult> {
  const { hold, now } = input;
  let charge = Math.max(0, Math.min(input.costMicros, hold.amount_micros));
  // What a settlement writes besides the balances: its entry (a charge, or the release of a
  // request not billed) and the usage record.
  const entry = (balanceAfter: number): LedgerEntry =>
    entryRow({
      accountId: hold.account_id,
      kind: charge > 0 ? 'usage' : 'release',
      amount: charge > 0 ? -charge : 0,
      balanceAfter,
      requestId: hold.request_id,
      reason: charge > 0 ? null : 'request not billed',
      holdMicros: hold.amount_micros,
      now,
    });
  const usage = (): NewUsageRecord => ({ ...input.usage, cost_micros: charge, hold_micros: hold.amount_micros });

  // An open hold is released and the charge taken from the balance.
  const change = { balance: -charge, held: -hold.amount_micros };

  // The usual case in one statement where the database has it; a hold that was not open takes
  // the general path below.
  if (
    hold.key_id === null &&
    s.settleOpenHold &&
    (await s.settleOpenHold({ hold, close: input.close, now, change, entry: entry(0 /* set by the statement */), usage: usage() }))
  )
    return { chargedMicros: charge, holdWasOpen: true };
  // A key's spend row is locked before the account's, as a hold locks them (no deadlock between
  // a hold and a settlement of the same key on PostgreSQL).
  const window = input.keySpend?.window ?? 0;
  const spend = hold.key_id !== null ? await s.keySpend(hold.key_id) : undefined;
  const holdWasOpen = await s.closeHold(hold.id, input.close, now);
  let balanceAfter: number | undefined;
  if (holdWasOpen) {
    balanceAfter = await s.adjust(hold.account_id, change);
  } else if (charge > 0) {
    const acct = await s.balances(hold.account_id);
    charge = acct ? Math.min(charge, Math.max(0, acct.balance_micros - acct.held_micros)) : 0;
    // Nor past what the key's spend limit has left (its expiry gave the room back).
    if (input.keySpend) charge = Math.min(charge, Math.max(0, input.keySpend.limitMicros - spendUsed(spend, window)));
    if (charge > 0) balanceAfter = await s.adjust(hold.account_id, { balance: -charge, held: 0 });
  }
  if (balanceAfter === undefined) charge = 0;
  if (charge > 0 || holdWasOpen) await s.insertEntry(entry(balanceAfter ?? 0));
  await s.insertUsage(usage());
  if (hold.key_id !== null) {
    // A hold the sweeper closed was released from the key's spend then.
    await s.settleKeySpend({ key: hold.key_id, window, held: holdWasOpen ? hold.amount_micros : 0, charge });
  }
  return { chargedMicros: charge, holdWasOpen };
}

/** Releases one hold whose time ran out; whether it was still open. */
export async function expireHold(
  s: LedgerStatements,
  hold: Pick<Hold, 'id' | 'account_id' | 'request_id' | 'amount_micros' | 'key_id'>,
  now: number,
): Promise<boolean> {
  // The key's row first, as a hold and a settlement take them.
  if (hold.key_id !== null) await s.keySpend(hold.key_id);
  if (!(await s.closeHold(hold.id, 'expired', now))) return false;
  if (hold.key_id !== null) await s.settleKeySpend({ key: hold.key_id, window: 0, held: hold.amount_micros, charge: 0 });
  const balance = await s.adjust(hold.account_id, { balance: 0, held: -hold.amount_micros });
  await addEntry(s, {
    accountId: hold.account_id,
    kind: 'release',
    amount: 0,
    balanceAfter: balance ?? 0,
    requestId: hold.request_id,
    reason: 'hold expired',
    holdMicros: hold.amount_micros,
    now,
  });
  return true;
}

/** Releases holds whose time ran out (their request crashed or hung). Returns how many. */
export async function expireHolds(db: Db, ledger: LedgerExecutor, now: number, batch = 200): Promise<number> {
  const due = await db
    .selectFrom('holds')
    .select(['id', 'account_id', 'request_id', 'amount_micros', 'key_id'])
    .where('status', '=', 'open')
    .where('expires_at', '<=', now)
    .limit(batch)
    .execute();
  const released = await Promise.all(due.map((h) => ledger.run((s) => expireHold(s, h, now))));
  return released.filter(Boolean).length;
}

export type LedgerReport = { ok: boolean; accounts: number; openHolds: number; entries: number; problems: string[] };

/** Checks the invariants the money rests on; `bizora ledger verify` prints this. */
export async function verifyLedger(db: Db): Promise<LedgerReport> {
  const problems: string[] = [];
  const accounts = await db
    .selectFrom('accounts')
    .leftJoin(
      db
        .selectFrom('ledger_entries')
        .select(['account_id', (eb) => eb.fn.sum<number>('amount_micros').as('total'), (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('account_id')
        .as('le'),
      'le.account_id',
      'accounts.id',
    )
    .leftJoin(
      db
        .selectFrom('holds')
        .select(['account_id', (eb) => eb.fn.sum<number>('amount_micros').as('held'), (eb) => eb.fn.countAll<number>().as('n')])
        .where('status', '=', 'open')
        .groupBy('account_id')
        .as('h'),
      'h.account_id',
      'accounts.id',
    )
    .select(['accounts.id', 'accounts.balance_micros', 'accounts.held_micros', 'le.total', 'le.n as entries', 'h.held', 'h.n as holds'])
    .execute();
  let entries = 0;
  let openHolds = 0;
  for (const a of accounts) {
    const total = Number(a.total ?? 0);
    const held = Number(a.held ?? 0);
    entries += Number(a.entries ?? 0);
    openHolds += Number(a.holds ?? 0);
    if (total !== a.balance_micros)
      problems.push(`${a.id}: ledger entries sum to ${total} but the balance is ${a.balance_micros} micro-USD`);
    if (held !== a.held_micros) problems.push(`${a.id}: open holds sum to ${held} but held_micros is ${a.held_micros}`);
    if (a.balance_micros < 0) problems.push(`${a.id}: balance is below zero (${a.balance_micros})`);
    if (a.held_micros > a.balance_micros) problems.push(`${a.id}: holds (${a.held_micros}) exceed the balance (${a.balance_micros})`);
  }
  const mismatched = await db
    .selectFrom(usageCosts(db).as('u'))
    .leftJoin('ledger_entries as le', (j) => j.onRef('le.request_id', '=', 'u.id').on('le.kind', '=', 'usage'))
    .select(['u.id', 'u.cost_micros', 'le.amount_micros'])
    .where((eb) => eb(eb.fn.coalesce(eb.neg(eb.ref('le.amount_micros')), eb.val(0)), '!=', eb.ref('u.cost_micros')))
    .limit(20)
    .execute();
  for (const m of mismatched)
    problems.push(`${m.id}: usage record costs ${m.cost_micros} but the ledger charged ${-(m.amount_micros ?? 0)}`);
  const orphanCharges = await db
    .selectFrom('ledger_entries as le')
    .leftJoin(usageCosts(db).as('u'), 'u.id', 'le.request_id')
    .select('le.request_id')
    .where('le.kind', '=', 'usage')
    .where('u.id', 'is', null)
    .limit(20)
    .execute();
  for (const o of orphanCharges) problems.push(`${o.request_id}: charged in the ledger without a usage record`);
  const keyHolds = await db
    .selectFrom('key_spend as ks')
    .leftJoin(
      db
        .selectFrom('holds')
        .select(['key_id', (eb) => eb.fn.sum<number>('amount_micros').as('held')])
        .where('status', '=', 'open')
        .where('key_id', 'is not', null)
        .groupBy('key_id')
        .as('h'),
      'h.key_id',
      'ks.key_id',
    )
    .select(['ks.key_id', 'ks.held_micros', 'h.held'])
    .execute();
  const unaccounted = await db
    .selectFrom('holds')
    .leftJoin('key_spend', 'key_spend.key_id', 'holds.key_id')
    .select('holds.id')
    .where('holds.status', '=', 'open')
    .where('holds.key_id', 'is not', null)
    .where('key_spend.key_id', 'is', null)
    .limit(20)
    .execute();
  for (const u of unaccounted) problems.push(`hold ${u.id}: counts against a key that holds nothing`);
  for (const k of keyHolds) {
    const held = Number(k.held ?? 0);
    if (held !== Number(k.held_micros)) problems.push(`key ${k.key_id}: open holds sum to ${held} but its spend holds ${k.held_micros}`);
  }
  return { ok: problems.length === 0, accounts: accounts.length, openHolds, entries, problems };
}
