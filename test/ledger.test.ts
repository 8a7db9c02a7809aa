// The money invariants, written down first: whatever sequence of grants, holds, settlements,
// releases and expiries happens, in whatever interleaving, the ledger entries sum to the
// balance, the open holds sum to held_micros, and nothing is ever below zero.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createAccount } from '../src/accounts/account-store.ts';
import { expireHolds, grantCredit, reserve, settle, verifyLedger } from '../src/billing/ledger.ts';
import { createLedgerExecutor, type LedgerExecutor } from '../src/billing/ledger-executor.ts';
import { compileLedgerStatements, type Statements, sqliteStatements } from '../src/billing/ledger-statements.ts';
import { type Database, openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import type { Hold, NewUsageRecord } from '../src/db/schema.ts';
import { createKey } from '../src/keys/key-store.ts';
import { newId } from '../src/lib/ids.ts';
import { createTestDatabase, type TestDatabase, testDatabaseKinds } from './support/databases.ts';

type Op =
  | { op: 'grant'; micros: number }
  | { op: 'reserve'; micros: number }
  | { op: 'settle'; pick: number; cost: number }
  | { op: 'release'; pick: number }
  | { op: 'expire'; pick: number }
  | { op: 'burst'; amounts: number[] }
  | { op: 'crowd'; settles: number; cost: number; amounts: number[]; grant: number; late: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), micros: fc.integer({ min: 1, max: 50_000 }) }),
  fc.record({ op: fc.constant('reserve' as const), micros: fc.integer({ min: 1, max: 40_000 }) }),
  fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), cost: fc.integer({ min: 0, max: 60_000 }) }),
  fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('expire' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('burst' as const), amounts: fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 2, maxLength: 12 }) }),
  // Everything at once, so group commit puts them in one batch: settlements (one of them twice),
  // new holds and a grant.
  fc.record({
    op: fc.constant('crowd' as const),
    settles: fc.nat({ max: 4 }),
    cost: fc.integer({ min: 0, max: 30_000 }),
    amounts: fc.array(fc.integer({ min: 1, max: 20_000 }), { maxLength: 8 }),
    grant: fc.integer({ min: 0, max: 30_000 }),
    late: fc.boolean(),
  }),
);

/** The usage record the gateway writes when it settles `hold`. */
const usageFor = (hold: Hold, keyId: string, now: number, extra: Partial<NewUsageRecord> = {}): NewUsageRecord => ({
  id: hold.request_id,
  account_id: hold.account_id,
  key_id: keyId,
  model: 'bizora',
  backend: 'simulator',
  mode: 'live',
  stream: 0,
  status: 'succeeded',
  http_status: 200,
  finish_reason: 'stop',
  prompt_tokens: 1,
  completion_tokens: 1,
  cost_micros: 0,
  hold_micros: 0,
  error_code: null,
  latency_ms: 1,
  created_at: now,
  ...extra,
});

// The executor the server runs (group commit; on PostgreSQL with its fused statements, and the
// general statements for the rest), on both databases; and PostgreSQL's plain batches
// (BIZORA_PG_PREPARED_STATEMENTS=off, for PgBouncer), which run every operation on the general statements.
const modes = (kind: string): boolean[] => (kind === 'postgres' ? [true, false] : [true]);
for (const kind of testDatabaseKinds())
  for (const prepared of modes(kind)) {
    describe(`ledger invariants (${kind}, group commit${prepared ? '' : ', plain batches'})`, () => {
      let tdb: TestDatabase;
      let database: Database;
      let ledger: LedgerExecutor;
      before(async () => {
        tdb = await createTestDatabase(kind);
        database = openDatabase(tdb.url);
        await migrateToLatest(database.db);
        ledger = createLedgerExecutor(database, { prepared });
      });
      after(async () => {
        await database.close();
        await tdb.drop();
      });

      test('any sequence of money operations keeps the ledger balanced and never below zero', async () => {
        const { db } = database;
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
            const now = Date.now();
            const acct = await createAccount(db, { email: `${newId('acct')}@example.com`, now });
            const key = await createKey(db, { accountId: acct.id, name: 'prop', mode: 'live', now });
            const open: Hold[] = [];
            let balance = 0;
            let held = 0;
            let seq = 0;
            const usage = (hold: Hold) => usageFor(hold, key.id, now);
            // The hold's time runs out and the sweeper releases it.
            const expire = async (hold: Hold) => {
              await db
                .updateTable('holds')
                .set({ expires_at: now - 1 })
                .where('id', '=', hold.id)
                .execute();
              await expireHolds(db, ledger, now);
              held -= hold.amount_micros;
            };
            const tryReserve = (micros: number) =>
              ledger.run((s) =>
                reserve(s, { accountId: acct.id, requestId: `req_prop${seq++}_${acct.id}`, amountMicros: micros, now, ttlMs: 60_000 }),
              );

            for (const o of ops) {
              if (o.op === 'grant') {
                await ledger.run((s) => grantCredit(s, { accountId: acct.id, micros: o.micros, now }));
                balance += o.micros;
              } else if (o.op === 'reserve') {
                const r = await tryReserve(o.micros);
                assert.equal(r.ok, o.micros <= balance - held, 'a hold succeeds exactly when the available balance covers it');
                if (r.ok) {
                  open.push(r.hold);
                  held += o.micros;
                }
              } else if (o.op === 'burst') {
                // Concurrent holds: the sum of those granted never exceeds what was available.
                const available = balance - held;
                const results = await Promise.all(o.amounts.map((m) => tryReserve(m)));
                let granted = 0;
                for (const r of results) {
                  if (r.ok) {
                    open.push(r.hold);
                    granted += r.hold.amount_micros;
                  }
                }
                assert.ok(granted <= available, `${granted} held of ${available} available`);
                held += granted;
              } else if (o.op === 'crowd') {
                // A late settlement (its hold expired) charges what is available when it runs,
                // while new holds take from the same balance.
                const late = o.late ? open.pop() : undefined;
                if (late) await expire(late);
                const settleLate = late
                  ? ledger.run((s) => settle(s, { hold: late, costMicros: late.amount_micros, now, close: 'settled', usage: usage(late) }))
                  : null;
                const settling = open.splice(0, o.settles);
                const settleOnce = (hold: Hold) =>
                  ledger.run((s) => settle(s, { hold, costMicros: o.cost, now, close: 'settled', usage: usage(hold) }));
                // The first hold is settled twice at once: exactly one of the two may succeed.
                const [settled, reserved, granted] = await Promise.all([
                  Promise.all([...settling, ...settling.slice(0, 1)].map((h) => settleOnce(h).catch(() => null))),
                  Promise.all(o.amounts.map((m) => tryReserve(m))),
                  o.grant ? ledger.run((s) => grantCredit(s, { accountId: acct.id, micros: o.grant, now })) : null,
                ]);
                if (settling.length) {
                  const twice = [settled[0], settled[settling.length]];
                  assert.equal(twice.filter(Boolean).length, 1, 'a request is settled once, even when settled twice at once');
                  settled[0] = twice.find(Boolean) ?? null;
                }
                for (const [i, hold] of settling.entries()) {
                  const r = settled[i];
                  assert.ok(r, 'a settlement of an open hold succeeds');
                  assert.equal(r.chargedMicros, Math.min(o.cost, hold.amount_micros));
                  held -= hold.amount_micros;
                  balance -= r.chargedMicros;
                }
                if (granted !== null) balance += o.grant;
                if (settleLate) balance -= (await settleLate).chargedMicros;
                for (const r of reserved)
                  if (r.ok) {
                    open.push(r.hold);
                    held += r.hold.amount_micros;
                  }
              } else if (open.length) {
                const hold = open.splice(o.pick % open.length, 1)[0] as Hold;
                if (o.op === 'expire') {
                  await expire(hold);
                  // A late settlement of an expired hold must not double-release or overdraw.
                  const late = await ledger.run((s) =>
                    settle(s, { hold, costMicros: hold.amount_micros, now, close: 'settled', usage: usage(hold) }),
                  );
                  assert.equal(late.holdWasOpen, false);
                  assert.ok(late.chargedMicros <= balance - held);
                  balance -= late.chargedMicros;
                } else {
                  const cost = o.op === 'settle' ? o.cost : 0;
                  const r = await ledger.run((s) =>
                    settle(s, { hold, costMicros: cost, now, close: cost > 0 ? 'settled' : 'released', usage: usage(hold) }),
                  );
                  assert.equal(r.chargedMicros, Math.min(cost, hold.amount_micros), 'the charge is the cost, capped at the hold');
                  held -= hold.amount_micros;
                  balance -= r.chargedMicros;
                  // Settling again is refused (one usage record and one charge per request): never billed twice.
                  await assert.rejects(ledger.run((s) => settle(s, { hold, costMicros: cost, now, close: 'settled', usage: usage(hold) })));
                }
              }
              const row = await db
                .selectFrom('accounts')
                .select(['balance_micros', 'held_micros'])
                .where('id', '=', acct.id)
                .executeTakeFirstOrThrow();
              assert.deepEqual([row.balance_micros, row.held_micros], [balance, held]);
              assert.ok(row.balance_micros >= 0 && row.held_micros <= row.balance_micros);
            }
            const report = await verifyLedger(db);
            assert.deepEqual(report.problems, []);
          }),
          { numRuns: kind === 'sqlite' ? 60 : 25 },
        );
      });

      test("a key's spend limit is held like the balance: concurrent holds never take its spend past the limit", async () => {
        const { db } = database;
        type KeyOp = { op: 'burst'; amounts: number[] } | { op: 'settle'; pick: number; cost: number } | { op: 'expire'; pick: number };
        const keyOpArb: fc.Arbitrary<KeyOp> = fc.oneof(
          fc.record({
            op: fc.constant('burst' as const),
            amounts: fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 10 }),
          }),
          fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), cost: fc.integer({ min: 0, max: 25_000 }) }),
          fc.record({ op: fc.constant('expire' as const), pick: fc.nat() }),
        );
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 60_000 }),
            fc.integer({ min: 1, max: 120_000 }),
            fc.array(keyOpArb, { minLength: 1, maxLength: 15 }),
            async (limit, credit, ops) => {
              const now = Date.now();
              const { acct, key } = await fundedAccount(credit, now);
              const keySpend = { keyId: key.id, limitMicros: limit, window: 0 };
              let seq = 0;
              const open: Hold[] = [];
              let spent = 0;
              let keyHeld = 0;
              let balance = credit;
              let held = 0;
              for (const o of ops) {
                if (o.op === 'burst') {
                  const keyLeft = limit - spent - keyHeld;
                  const accountLeft = balance - held;
                  const results = await Promise.all(
                    o.amounts.map((m) =>
                      ledger.run((s) =>
                        reserve(s, {
                          accountId: acct.id,
                          requestId: `req_key${seq++}_${key.id}`,
                          amountMicros: m,
                          now,
                          ttlMs: 60_000,
                          keySpend,
                        }),
                      ),
                    ),
                  );
                  let granted = 0;
                  for (const r of results) {
                    if (r.ok) {
                      open.push(r.hold);
                      granted += r.hold.amount_micros;
                    } else if (r.reason === 'key_spend_limit') assert.ok(r.availableMicros <= keyLeft);
                  }
                  assert.ok(
                    granted <= Math.min(keyLeft, accountLeft),
                    `${granted} held of ${keyLeft} left on the key, ${accountLeft} on the account`,
                  );
                  keyHeld += granted;
                  held += granted;
                } else if (open.length) {
                  const hold = open.splice(o.pick % open.length, 1)[0] as Hold;
                  if (o.op === 'expire') {
                    await db
                      .updateTable('holds')
                      .set({ expires_at: now - 1 })
                      .where('id', '=', hold.id)
                      .execute();
                    await expireHolds(db, ledger, now);
                    // Its request settles late: charged only what the account and the key still have room for.
                    const late = await ledger.run((s) =>
                      settle(s, {
                        hold,
                        costMicros: hold.amount_micros,
                        now,
                        close: 'settled',
                        usage: usageFor(hold, key.id, now),
                        keySpend: { limitMicros: limit, window: 0 },
                      }),
                    );
                    assert.equal(late.holdWasOpen, false);
                    spent += late.chargedMicros;
                    balance -= late.chargedMicros;
                  } else {
                    const r = await ledger.run((s) =>
                      settle(s, {
                        hold,
                        costMicros: o.cost,
                        now,
                        close: 'settled',
                        usage: usageFor(hold, key.id, now),
                        keySpend: { limitMicros: limit, window: 0 },
                      }),
                    );
                    spent += r.chargedMicros;
                    balance -= r.chargedMicros;
                  }
                  keyHeld -= hold.amount_micros;
                  held -= hold.amount_micros;
                }
                const row = await db.selectFrom('key_spend').selectAll().where('key_id', '=', key.id).executeTakeFirst();
                assert.deepEqual([row?.spent_micros ?? 0, row?.held_micros ?? 0], [spent, keyHeld]);
                assert.ok(spent + keyHeld <= limit, 'the key never spends or holds past its limit');
              }
              assert.deepEqual((await verifyLedger(db)).problems, []);
            },
          ),
          { numRuns: kind === 'sqlite' ? 25 : 8 },
        );
      });

      test("a late settlement of a key's expired hold is charged only what the key's limit has left", async () => {
        const now = Date.now();
        const { acct, key } = await fundedAccount(1_000_000, now);
        const keySpend = { keyId: key.id, limitMicros: 100_000, window: 0 };
        const hold = async (n: number) => {
          const r = await ledger.run((s) =>
            reserve(s, { accountId: acct.id, requestId: `req_late${n}_${key.id}`, amountMicros: 100_000, now, ttlMs: 60_000, keySpend }),
          );
          assert.ok(r.ok);
          return r.hold;
        };
        const settleAt = (h: Hold) =>
          ledger.run((s) => settle(s, { hold: h, costMicros: 100_000, now, close: 'settled', usage: usageFor(h, key.id, now), keySpend }));
        const first = await hold(1);
        await database.db
          .updateTable('holds')
          .set({ expires_at: now - 1 })
          .where('id', '=', first.id)
          .execute();
        await expireHolds(database.db, ledger, now);
        // The expiry gave the room back, and another request took all of it.
        assert.equal((await settleAt(await hold(2))).chargedMicros, 100_000);
        const late = await settleAt(first);
        assert.deepEqual([late.holdWasOpen, late.chargedMicros], [false, 0]);
        const row = await database.db.selectFrom('key_spend').selectAll().where('key_id', '=', key.id).executeTakeFirstOrThrow();
        assert.deepEqual([row.spent_micros, row.held_micros], [100_000, 0]);
        assert.deepEqual((await verifyLedger(database.db)).problems, []);
      });

      test("a key's spend period starts from nothing: yesterday's spend does not count today", async () => {
        const now = Date.UTC(2026, 11, 3, 12);
        const { acct, key } = await fundedAccount(1_000_000, now);
        const day = (t: number) => ({ keyId: key.id, limitMicros: 100_000, window: t - (t % 86_400_000) });
        const hold = (t: number, amount: number, n: number) =>
          ledger.run((s) =>
            reserve(s, {
              accountId: acct.id,
              requestId: `req_day${n}_${key.id}`,
              amountMicros: amount,
              now: t,
              ttlMs: 60_000,
              keySpend: day(t),
            }),
          );
        const first = await hold(now, 90_000, 1);
        assert.ok(first.ok);
        await ledger.run((s) =>
          settle(s, {
            hold: first.hold,
            costMicros: 90_000,
            now,
            close: 'settled',
            usage: usageFor(first.hold, key.id, now),
            keySpend: day(now),
          }),
        );
        const again = await hold(now + 1000, 20_000, 2);
        assert.deepEqual(again.ok ? null : [again.reason, again.availableMicros], ['key_spend_limit', 10_000]);
        const tomorrow = now + 86_400_000;
        const next = await hold(tomorrow, 20_000, 3);
        assert.ok(next.ok);
        await ledger.run((s) =>
          settle(s, {
            hold: next.hold,
            costMicros: 0,
            now: tomorrow,
            close: 'released',
            usage: usageFor(next.hold, key.id, tomorrow),
            keySpend: day(tomorrow),
          }),
        );
        const row = await database.db.selectFrom('key_spend').selectAll().where('key_id', '=', key.id).executeTakeFirstOrThrow();
        assert.deepEqual([row.spent_micros, row.held_micros, row.window_start], [0, 0, day(tomorrow).window]);
      });

      /** A new account with a live key and `micros` of credit. */
      async function fundedAccount(micros: number, now: number) {
        const acct = await createAccount(database.db, { email: `${newId('acct')}@example.com`, now });
        const key = await createKey(database.db, { accountId: acct.id, name: 'ledger', mode: 'live', now });
        await ledger.run((s) => grantCredit(s, { accountId: acct.id, micros, now }));
        return { acct, key };
      }

      test('an operation that fails in a batch fails alone; the rest of the batch commits', async () => {
        const { db } = database;
        const now = Date.now();
        const { acct, key } = await fundedAccount(100_000, now);
        const hold = (id: string, micros: number) =>
          ledger.run((s) => reserve(s, { accountId: acct.id, requestId: id, amountMicros: micros, now, ttlMs: 60_000 }));
        const first = await hold(`req_a_${acct.id}`, 10_000);
        assert.ok(first.ok);
        const usage = usageFor(first.hold, key.id, now);
        // One batch: a settlement, two new holds, and a hold reusing a request id (refused by the
        // database: holds.request_id is unique).
        const [settled, second, duplicate, third] = await Promise.allSettled([
          ledger.run((s) => settle(s, { hold: first.hold, costMicros: 4_000, now, close: 'settled', usage })),
          hold(`req_b_${acct.id}`, 20_000),
          hold(`req_a_${acct.id}`, 5_000),
          hold(`req_c_${acct.id}`, 30_000),
        ]);
        assert.equal(settled.status === 'fulfilled' && settled.value.chargedMicros, 4_000);
        assert.ok(second.status === 'fulfilled' && second.value.ok);
        assert.equal(duplicate.status, 'rejected');
        assert.ok(third.status === 'fulfilled' && third.value.ok);
        const row = await db
          .selectFrom('accounts')
          .select(['balance_micros', 'held_micros'])
          .where('id', '=', acct.id)
          .executeTakeFirstOrThrow();
        assert.deepEqual([row.balance_micros, row.held_micros], [96_000, 50_000]);
        assert.deepEqual((await verifyLedger(db)).problems, []);
      });

      test('text from upstream reaches the usage record exactly as given', async () => {
        const { db } = database;
        const now = Date.now();
        const { acct, key } = await fundedAccount(1_000, now);
        const r = await ledger.run((s) =>
          reserve(s, { accountId: acct.id, requestId: `req_t_${acct.id}`, amountMicros: 100, now, ttlMs: 60_000 }),
        );
        assert.ok(r.ok);
        // Quotes, backslashes, SQL and non-ASCII text travel as parameters on every database.
        const odd = "it's \\ a 'quote'); DELETE FROM accounts; -- \u00e9\u{1F600}";
        const usage = usageFor(r.hold, key.id, now, { model: odd, finish_reason: odd, stream: 1 });
        await ledger.run((s) => settle(s, { hold: r.hold, costMicros: 7, now, close: 'settled', usage }));
        const row = await db.selectFrom('usage_records').selectAll().where('id', '=', r.hold.request_id).executeTakeFirstOrThrow();
        assert.deepEqual([row.model, row.finish_reason, row.error_code, row.stream, row.cost_micros], [odd, odd, null, 1, 7]);
        assert.ok(await db.selectFrom('accounts').select('id').where('id', '=', acct.id).executeTakeFirst());
      });

      test('ledger verify reports a balance that does not match its entries', async () => {
        const { db } = database;
        const acct = await createAccount(db, { email: `${newId('acct')}@example.com`, now: Date.now() });
        await ledger.run((s) => grantCredit(s, { accountId: acct.id, micros: 1000, now: Date.now() }));
        await db.updateTable('accounts').set({ balance_micros: 5000 }).where('id', '=', acct.id).execute();
        const report = await verifyLedger(db);
        assert.equal(report.ok, false);
        assert.ok(report.problems.some((p) => p.startsWith(acct.id)));
        await db.updateTable('accounts').set({ balance_micros: 1000 }).where('id', '=', acct.id).execute();
        assert.deepEqual((await verifyLedger(db)).problems, []);
      });

      test('the database itself refuses a balance below zero', async () => {
        const { db } = database;
        const acct = await createAccount(db, { email: `${newId('acct')}@example.com`, now: Date.now() });
        await assert.rejects(db.updateTable('accounts').set({ balance_micros: -1 }).where('id', '=', acct.id).execute());
      });
    });
  }

describe('ledger statements outside a transaction (sqlite)', () => {
  test('refuse to move money', async (t) => {
    const tdb = await createTestDatabase('sqlite');
    const database = openDatabase(tdb.url);
    t.after(async () => {
      await database.close();
      await tdb.drop();
    });
    await migrateToLatest(database.db);
    if (database.dialect !== 'sqlite') throw new Error('not sqlite');
    const acct = await createAccount(database.db, { email: `${newId('acct')}@example.com`, now: Date.now() });
    const outside = sqliteStatements(compileLedgerStatements(database.db, 'sqlite'), database.sqlite);
    // Nor does a hand-made object type-check as statements (npm run check fails if it ever does).
    const forged: Statements = { ...outside };
    // @ts-expect-error: only the ledger's runners make LedgerStatements
    void (() => grantCredit(forged, { accountId: acct.id, micros: 1, now: 0 }));
    await assert.rejects(grantCredit(outside, { accountId: acct.id, micros: 1000, now: Date.now() }), /only inside the ledger executor/);
    const row = await database.db.selectFrom('accounts').select('balance_micros').where('id', '=', acct.id).executeTakeFirstOrThrow();
    assert.equal(row.balance_micros, 0);
  });
});
