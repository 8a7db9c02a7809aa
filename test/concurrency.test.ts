import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { testDatabaseKinds } from './support/databases.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';
import { accountAffording, raceForBalance } from './support/race.ts';

const K = 7;
const N = 50;
const MAX_TOKENS = 5;
const model = testModel();
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Count the ways a balance could go below zero.' }];

for (const kind of testDatabaseKinds()) {
  describe(`concurrent requests against one balance (${kind})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(kind, { models: [model] });
    });
    after(() => h.close());

    test(`a balance that affords exactly ${K} requests: ${N} at once -> ${K} succeed, the rest get 402`, async () => {
      const { accountId, client } = await accountAffording(h, K, model, { messages, maxTokens: MAX_TOKENS });

      let lowest = Number.POSITIVE_INFINITY;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const b = await h.balanceMicros(accountId);
          lowest = Math.min(lowest, b.balance - b.held);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();

      const started = performance.now();
      const { ok, refused } = await raceForBalance(client, N, { messages, maxTokens: MAX_TOKENS });
      const ms = performance.now() - started;
      watching = false;
      await watcher;

      console.log(
        `# ${kind}: ${N} concurrent requests, balance for ${K}: ${ok} succeeded, ${refused} got 402, lowest available ${lowest} micro-USD, ${ms.toFixed(0)} ms`,
      );
      assert.equal(ok, K);
      assert.equal(refused, N - K);
      assert.ok(lowest >= 0);
      assert.deepEqual(await h.balanceMicros(accountId), { balance: 0, held: 0 });
      const charges = await h.deps.db
        .selectFrom('ledger_entries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('account_id', '=', accountId)
        .where('kind', '=', 'usage')
        .executeTakeFirstOrThrow();
      assert.equal(Number(charges.n), K);
      const report = await h.verify();
      assert.deepEqual(report.problems, []);
    });
  });
}
