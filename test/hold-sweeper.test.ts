import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { reserve } from '../src/billing/ledger.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { type Harness, startHarness } from './support/harness.ts';

for (const kind of testDatabaseKinds()) {
  describe(`holds expire (${kind})`, () => {
    let h: Harness;
    let now = Date.now();
    before(async () => {
      h = await startHarness(kind, { clock: { now: () => now } });
    });
    after(() => h.close());

    test('a hold whose request never settled is released by the sweeper after its time-to-live', async () => {
      const account = await h.newAccount({ cents: 100 });
      // As if a request had been held and its server had crashed before settling.
      const r = await h.deps.ledger.run((s) =>
        reserve(s, {
          accountId: account.id,
          requestId: 'req_crashed1',
          amountMicros: 600_000,
          now,
          ttlMs: h.deps.config.holdTtlSeconds * 1000,
        }),
      );
      assert.ok(r.ok);
      assert.deepEqual(await h.balanceMicros(account.id), { balance: 1_000_000, held: 600_000 });

      assert.equal(await h.deps.sweeper.sweep(), 0, 'not yet due');
      now += h.deps.config.holdTtlSeconds * 1000;
      assert.equal(await h.deps.sweeper.sweep(), 1);
      assert.deepEqual(await h.balanceMicros(account.id), { balance: 1_000_000, held: 0 });
      const hold = await h.deps.db.selectFrom('holds').select('status').where('request_id', '=', 'req_crashed1').executeTakeFirstOrThrow();
      assert.equal(hold.status, 'expired');
      assert.equal(await h.deps.sweeper.sweep(), 0, 'released once');
      assert.deepEqual((await h.verify()).problems, []);
    });
  });
}
