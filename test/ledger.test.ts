// The money invariants, written down first: whatever sequence of grants, holds, settlements,
// releases and expiries happens, in whatever interleaving, the ledger entries sum to the
// balance, the open holds sum to held_micros, and nothing is ever below zero.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createAccount } from '../src/accounts/account-store.ts';
import { expireHolds, grantCredit, reserve, settle, verifyLedger } from '../src/billing/ledger.ts';
import {
  KyselyBatchLedgerExecutor,
  KyselyLedgerExecutor,
  type LedgerExecutor,
  SqliteBatchLedgerExecutor,
} from '../src/billing/ledger-executor.ts';
import { postgresStatements } from '../src/billing/ledger-statements.ts';
import { type Database, openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import type { Hold } from '../src/db/schema.ts';
import { createKey } from '../src/keys/key-store.ts';
import { newId } from '../src/lib/ids.ts';
import { createTestDatabase, type TestDatabase, testDatabaseKinds } from './support/databases.ts';

type Op =
  | { op: 'grant'; micros: number }
  | { op: 'reserve'; micros: number }
  | { op: 'settle'; pick: number; cost: number }
  | { op: 'release'; pick: number }
  | { op: 'expire'; pick: number }
  | { op: 'burst'; amounts: number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), micros: fc.integer({ min: 1, max: 50_000 }) }),
  fc.record({ op: fc.constant('reserve' as const), micros: fc.integer({ min: 1, max: 40_000 }) }),
  fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), cost: fc.integer({ min: 0, max: 60_000 }) }),
  fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('expire' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('burst' as const), amounts: fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 2, maxLength: 12 }) }),
);

const executors = ['group commit', 'transaction per operation'] as const;

for (const kind of testDatabaseKinds())
  for (const mode of executors) {
    describe(`ledger invariants (${kind}, ${mode})`, () => {
      let tdb: TestDatabase;
      let database: Database;
      let ledger: LedgerExecutor;
      before(async () => {
        tdb = await createTestDatabase(kind);
        database = openDatabase(tdb.url);
        await migrateToLatest(database.db);
        // Group commit is what the server runs (with PostgreSQL's fused statements); one
        // transaction per operation exercises the general statements on both databases.
        if (mode === 'transaction per operation') ledger = new KyselyLedgerExecutor(database.db);
        else if (database.sqlite) ledger = new SqliteBatchLedgerExecutor(database.db, database.sqlite);
        else ledger = new KyselyBatchLedgerExecutor(database.db, postgresStatements);
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
            const usage = (hold: Hold) => ({
              id: hold.request_id,
              account_id: acct.id,
              key_id: key.id,
              model: 'bizora',
              backend: 'simulator',
              mode: 'live' as const,
              stream: 0,
              status: 'succeeded' as const,
              http_status: 200,
              finish_reason: 'stop',
              prompt_tokens: 1,
              completion_tokens: 1,
              cost_micros: 0,
              hold_micros: 0,
              error_code: null,
              latency_ms: 1,
              created_at: now,
            });
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
              } else if (open.length) {
                const hold = open.splice(o.pick % open.length, 1)[0] as Hold;
                if (o.op === 'expire') {
                  await db
                    .updateTable('holds')
                    .set({ expires_at: now - 1 })
                    .where('id', '=', hold.id)
                    .execute();
                  await expireHolds(db, ledger, now);
                  held -= hold.amount_micros;
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
