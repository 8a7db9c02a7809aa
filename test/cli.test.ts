import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, ensureBuilt } from './support/build.ts';
import { DashboardClient } from './support/dashboard-client.ts';
import { createTestDatabase, testDatabaseKinds } from './support/databases.ts';
import { eventually, type Harness, startHarness } from './support/harness.ts';

ensureBuilt();
const run = promisify(execFile);

for (const kind of testDatabaseKinds()) {
  describe(`the bizora CLI (${kind})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(kind);
    });
    after(() => h.close());

    async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
          env: { ...process.env, BIZORA_DATABASE_URL: h.databaseUrl },
        });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    }
    // The CLI's own work (arguments, output, exit codes) runs once, on SQLite; the whole flow of
    // the first test runs on both databases. What the commands do to the database is the code the
    // server runs, tested on both databases by its own tests.
    const onSqliteOnly = kind === 'sqlite' ? test : () => {};
    const json = async <T>(...args: string[]): Promise<T> => {
      const r = await cli(...args, '--json');
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as T;
    };

    test('creates an account, grants credit, creates a key that works and revokes it at once', async () => {
      const acct = await json<{ id: string; email: string }>('accounts', 'create', '--email', 'Cli@Example.com', '--name', 'CLI user');
      assert.match(acct.id, /^acct_/);
      assert.equal(acct.email, 'cli@example.com');

      const grant = await json<{ balance_cents: number }>(
        'credits',
        'grant',
        '--account',
        'cli@example.com',
        '--cents',
        '250',
        '--reason',
        'welcome',
      );
      assert.equal(grant.balance_cents, 250);

      const key = await json<{ id: string; key: string; name: string; preview: string }>(
        'keys',
        'create',
        '--account',
        acct.id,
        '--name',
        'ci',
      );
      assert.deepEqual(Object.keys(key).sort(), [
        'expires_at',
        'id',
        'key',
        'max_concurrency',
        'mode',
        'models',
        'name',
        'preview',
        'rpm',
        'spend_limit_cents',
        'spend_period',
        'tpm',
      ]);
      assert.match(key.key, /^sk_live_/);
      assert.equal(key.preview, `${key.key.slice(0, 12)}…${key.key.slice(-4)}`);

      const chat = (k: string) =>
        fetch(`${h.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }),
        });
      assert.equal((await chat(key.key)).status, 200);

      const list = await json<Array<{ id: string; preview: string; status: string; name: string }>>('keys', 'list', '--account', acct.id);
      assert.equal(list.length, 1);
      assert.equal(list[0]?.status, 'active');
      assert.ok(!JSON.stringify(list).includes(key.key), 'the full key is shown only once');

      const human = await cli('keys', 'revoke', key.id);
      assert.equal(human.code, 0);
      assert.match(human.stdout, /revoked/);
      // Revoked from another process: the running server refuses the key within a second (the
      // contract; on SQLite at once, on PostgreSQL as soon as the revocation's NOTIFY arrives).
      const revokedAt = performance.now();
      await eventually(async () => (await chat(key.key)).status === 401, 1000);
      assert.ok(performance.now() - revokedAt < 1000);
      assert.equal((await json<Array<{ status: string }>>('keys', 'list', '--account', acct.id))[0]?.status, 'revoked');

      const test = await json<{ key: string }>('keys', 'create', '--account', acct.id, '--name', 'sandbox', '--test');
      assert.match(test.key, /^sk_test_/);

      const balance = await json<{ balance_cents: number; available_cents: number }>('balance', '--account', acct.id);
      assert.ok(balance.balance_cents < 250 && balance.balance_cents >= 249);
      const verify = await json<{ ok: boolean }>('ledger', 'verify');
      assert.equal(verify.ok, true);
    });

    // The limits' own logic runs on both databases in key-limits and management-api: here, the flags.
    onSqliteOnly(
      'keys create with limits, keys update changes only the flags given (0 or none clears), the server applies them at once',
      async () => {
        const acct = await h.newAccount({ cents: 100 });
        type KeyOut = {
          id: string;
          key: string;
          rpm: number | null;
          tpm: number | null;
          max_concurrency: number | null;
          spend_limit_cents: number | null;
          spend_period: string | null;
          models: string[] | null;
          expires_at: string | null;
        };
        const k = await json<KeyOut>(
          'keys',
          'create',
          '--account',
          acct.id,
          '--name',
          'limited',
          '--rpm',
          '2',
          '--tpm',
          '50000',
          '--max-concurrency',
          '3',
          '--spend-limit-cents',
          '40',
          '--spend-period',
          'day',
          '--models',
          'bizora',
          '--expires-in',
          '30d',
        );
        assert.deepEqual(
          [k.rpm, k.tpm, k.max_concurrency, k.spend_limit_cents, k.spend_period, k.models],
          [2, 50_000, 3, 40, 'day', ['bizora']],
        );
        assert.ok(k.expires_at && Math.abs(Date.parse(k.expires_at) - (Date.now() + 30 * 86_400_000)) < 60_000);
        const chat = () =>
          fetch(`${h.baseURL}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'bizora', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
          });
        assert.deepEqual([(await chat()).status, (await chat()).status, (await chat()).status], [200, 200, 429]);
        const updated = await json<KeyOut>('keys', 'update', k.id, '--rpm', 'none', '--models', 'none', '--spend-period', 'month');
        assert.deepEqual(
          [updated.rpm, updated.tpm, updated.models, updated.spend_limit_cents, updated.spend_period],
          [null, 50_000, null, 40, 'month'],
        );
        assert.equal((await chat()).status, 200, 'the cleared limit is gone on the next request');
        const bad = await cli('keys', 'update', k.id, '--rpm', '-3');
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /positive whole number/);
        const human = await cli('keys', 'list', '--account', acct.id);
        assert.match(human.stdout, /50000 tpm, 3 at once, spend 40 cents per month/);
      },
    );

    onSqliteOnly('keys rotate prints the new secret once; the old one works for --grace; --grace 0 ends it at once', async () => {
      const acct = await h.newAccount({ cents: 100 });
      const { id, key } = await h.newKey(acct.id);
      const status = async (k: string) => (await fetch(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${k}` } })).status;
      const r = await json<{ id: string; key: string; previous_valid_until: string | null }>('keys', 'rotate', id, '--grace', '2h');
      assert.deepEqual(Object.keys(r).sort(), ['id', 'key', 'previous_valid_until']);
      assert.equal(r.id, id);
      assert.ok(r.previous_valid_until && Math.abs(Date.parse(r.previous_valid_until) - Date.now() - 2 * 3_600_000) < 60_000);
      assert.deepEqual([await status(key), await status(r.key)], [200, 200]);
      const again = await json<{ key: string; previous_valid_until: string | null }>('keys', 'rotate', id, '--grace', '0');
      assert.equal(again.previous_valid_until, null);
      assert.deepEqual([await status(r.key), await status(again.key)], [401, 200]);
      const missing = await cli('keys', 'rotate', 'key_doesnotexist');
      assert.notEqual(missing.code, 0);
    });

    onSqliteOnly('prints the key once in human output too', async () => {
      await cli('accounts', 'create', '--email', 'human@example.com');
      const r = await cli('keys', 'create', '--account', 'human@example.com', '--name', 'laptop');
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^sk_live_[0-9A-Za-z]{39}$/m);
      assert.match(r.stdout, /not be shown again/);
    });

    onSqliteOnly('credits grant --idempotency-key grants once: run again, it prints the first grant', async () => {
      const acct = await h.newAccount();
      const grant = (cents: string) =>
        json<{ balance_cents: number; granted_cents: number; replayed: boolean }>(
          'credits',
          'grant',
          '--account',
          acct.id,
          '--cents',
          cents,
          '--idempotency-key',
          `deploy-${acct.id}`,
        );
      const first = await grant('300');
      assert.deepEqual([first.balance_cents, first.replayed], [300, false]);
      const again = await grant('300');
      assert.deepEqual([again.balance_cents, again.granted_cents, again.replayed], [300, 300, true]);
      assert.equal((await h.balanceMicros(acct.id)).balance, 300 * 10_000);
      const other = await cli('credits', 'grant', '--account', acct.id, '--cents', '5', '--idempotency-key', `deploy-${acct.id}`);
      assert.equal(other.code, 1);
      assert.match(other.stderr, /used already/);
      assert.equal((await h.balanceMicros(acct.id)).balance, 300 * 10_000);
    });

    onSqliteOnly('accounts create --admin makes an administrator who signs in with the password printed once', async () => {
      const made = await json<{ role: string; password: string }>('accounts', 'create', '--email', 'ops@example.com', '--admin');
      assert.equal(made.role, 'admin');
      assert.match(made.password, /^[0-9A-Za-z]{20}$/);
      const ops = new DashboardClient(h.url);
      assert.equal((await ops.signIn('ops@example.com', made.password)).role, 'admin');
      // --password-stdin: the password chosen, piped in, never printed.
      const child = run(process.execPath, [BIN, 'accounts', 'create', '--email', 'piped@example.com', '--password-stdin', '--json'], {
        env: { ...process.env, BIZORA_DATABASE_URL: h.databaseUrl },
      });
      child.child.stdin?.end('my own password\n');
      const piped = JSON.parse((await child).stdout) as { role: string; password?: string };
      assert.equal(piped.password, undefined);
      assert.equal(piped.role, 'member');
      assert.equal((await new DashboardClient(h.url).signIn('piped@example.com', 'my own password')).email, 'piped@example.com');
    });

    onSqliteOnly('migrate reports the migrations it applies, and nothing the second time', async () => {
      const fresh = await createTestDatabase(kind);
      try {
        const env = { ...process.env, BIZORA_DATABASE_URL: fresh.url };
        const first = JSON.parse((await run(process.execPath, [BIN, 'migrate', '--json'], { env })).stdout) as { applied: string[] };
        assert.ok(first.applied.length >= 4 && first.applied[0] === '001_core', first.applied.join());
        const second = JSON.parse((await run(process.execPath, [BIN, 'migrate', '--json'], { env })).stdout) as { applied: string[] };
        assert.deepEqual(second.applied, []);
      } finally {
        await fresh.drop();
      }
    });

    onSqliteOnly('bad arguments get a one-line error and a non-zero exit', async () => {
      const cases: string[][] = [
        ['accounts', 'create'],
        ['accounts', 'create', '--email', 'not-an-email'],
        ['credits', 'grant', '--account', 'human@example.com', '--cents', '-5'],
        ['credits', 'grant', '--account', 'nobody@example.com', '--cents', '5'],
        ['keys', 'create', '--account', 'human@example.com', '--name', '   '],
        ['keys', 'revoke', 'key_doesnotexist'],
        ['balance', '--account', 'acct_missing'],
        ['frobnicate'],
      ];
      // Independent of each other: run at once.
      const results = await Promise.all(cases.map((args) => cli(...args)));
      for (const [i, r] of results.entries()) {
        const args = (cases[i] as string[]).join(' ');
        assert.notEqual(r.code, 0, args);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${args}: ${r.stderr}`);
      }
    });

    onSqliteOnly('ledger verify exits non-zero when the books do not balance', async () => {
      const acct = await h.newAccount({ cents: 10 });
      await h.deps.db.updateTable('accounts').set({ balance_micros: 999_999 }).where('id', '=', acct.id).execute();
      const r = await cli('ledger', 'verify');
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(acct.id));
      await h.deps.db.updateTable('accounts').set({ balance_micros: 100_000 }).where('id', '=', acct.id).execute();
      assert.equal((await cli('ledger', 'verify')).code, 0);
    });
  });
}
