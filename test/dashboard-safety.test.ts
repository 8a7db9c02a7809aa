// Dashboard and operator safety: the first administrator under concurrency, idempotent grants,
// NUL characters, expired sessions (on every database), then security headers, the base URL
// Getting started shows and BIZORA_SIGNUP=closed.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createAccount } from '../src/accounts/account-store.ts';
import { hashPassword } from '../src/accounts/passwords.ts';
import { apiBaseUrl } from '../src/accounts/session-routes.ts';
import { SessionSweeper } from '../src/accounts/sessions.ts';
import { grantCreditIdempotently } from '../src/billing/ledger.ts';
import { createLedgerExecutor } from '../src/billing/ledger-executor.ts';
import { findNul } from '../src/dashboard/plugin.ts';
import { openDatabase } from '../src/db/connection.ts';
import { DashboardClient } from './support/dashboard-client.ts';
import { testDatabaseKinds } from './support/databases.ts';
import { type Harness, startHarness } from './support/harness.ts';

for (const kind of testDatabaseKinds()) {
  describe(`dashboard safety (${kind})`, () => {
    let h: Harness;
    // The administrator: the first account on this database, signed up before any test runs.
    let admin: DashboardClient;
    before(async () => {
      h = await startHarness(kind);
      admin = new DashboardClient(h.url);
      assert.equal((await admin.signUp('admin@example.com')).role, 'admin');
    });
    after(() => h.close());

    test('concurrent first sign-ups: exactly one becomes the administrator', async (t) => {
      // A database of its own: the first sign-ups must be the first on it.
      const fresh = await startHarness(kind);
      t.after(() => fresh.close());
      const clients = Array.from({ length: 4 }, () => new DashboardClient(fresh.url));
      await Promise.all(clients.map((c) => c.start()));
      const accounts = await Promise.all(
        clients.map((c, i) => c.call('POST', '/signup', { email: `first${i}@example.com`, password: 'correct horse battery' })),
      );
      assert.deepEqual(
        accounts.map((a) => a.status),
        [201, 201, 201, 201],
      );
      const admins = accounts.filter((a) => a.body.account.role === 'admin');
      assert.equal(admins.length, 1);
      const rows = await fresh.deps.db.selectFrom('accounts').select('role').where('role', '=', 'admin').execute();
      assert.equal(rows.length, 1);
    });

    const grantEntries = async (accountId: string) =>
      (await h.deps.db.selectFrom('ledger_entries').selectAll().where('account_id', '=', accountId).where('kind', '=', 'grant').execute())
        .length;

    test('a grant sent again with the same Idempotency-Key is made once and answered like the first', async () => {
      const target = await h.newAccount();
      const grant = () =>
        admin.call('POST', '/admin/grants', { account: target.email, cents: 250 }, { headers: { 'idempotency-key': 'grant-once-1' } });
      const first = await grant();
      assert.equal(first.status, 201);
      assert.equal(first.headers.get('idempotent-replayed'), null);
      await h.grant(target.id, 100); // the balance moves on meanwhile
      const again = await grant();
      assert.equal(again.status, 201);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.body, first.body);
      assert.deepEqual(first.body, { account_id: target.id, granted_cents: 250, balance_cents: 250 });
      assert.equal(await grantEntries(target.id), 2, 'the replay granted nothing');
      assert.equal((await h.balanceMicros(target.id)).balance, 350 * 10_000);
    });

    test('two simultaneous grants with one key make one ledger entry', async () => {
      const target = await h.newAccount();
      const answers = await Promise.all(
        Array.from({ length: 2 }, () =>
          admin.call(
            'POST',
            '/admin/grants',
            { account: target.id, cents: 500 },
            { headers: { 'idempotency-key': `double-click-${target.id}` } },
          ),
        ),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        [201, 201],
      );
      assert.deepEqual(answers[0]?.body, answers[1]?.body);
      assert.equal(await grantEntries(target.id), 1);
      assert.equal((await h.balanceMicros(target.id)).balance, 500 * 10_000);
      assert.deepEqual((await h.verify()).problems, []);
    });

    test('two server instances granting with one key at the same moment: one grant, both answered alike', async () => {
      // Two connections of their own, as two processes on one database would have.
      const instances = [openDatabase(h.databaseUrl), openDatabase(h.databaseUrl)];
      try {
        const ledgers = instances.map((d) => createLedgerExecutor(d));
        for (let round = 0; round < 5; round++) {
          const target = await h.newAccount();
          const key = `two-instances-${target.id}`;
          const results = await Promise.all(
            ledgers.map((l) =>
              grantCreditIdempotently(l, { accountId: target.id, micros: 1_000_000, now: Date.now(), idempotencyKey: key }),
            ),
          );
          assert.deepEqual(results.map((r) => r.ok && r.replayed).sort(), [false, true]);
          assert.equal(await grantEntries(target.id), 1);
          // The same key for two different accounts at once: one grant, one refusal.
          const [a, b] = [await h.newAccount(), await h.newAccount()];
          const split = await Promise.all(
            [a, b].map((acct, i) =>
              grantCreditIdempotently(ledgers[i] as (typeof ledgers)[number], {
                accountId: acct.id,
                micros: 1_000_000,
                now: Date.now(),
                idempotencyKey: `split-${a.id}`,
              }),
            ),
          );
          assert.deepEqual(split.map((r) => (r.ok ? 'granted' : r.reason)).sort(), ['granted', 'key_reused']);
          assert.equal((await grantEntries(a.id)) + (await grantEntries(b.id)), 1);
        }
        assert.deepEqual((await h.verify()).problems, []);
      } finally {
        await Promise.all(instances.map((d) => d.close()));
      }
    });

    test('the same Idempotency-Key for a different grant is refused with 409, and a malformed one with 400', async () => {
      const target = await h.newAccount();
      const headers = { 'idempotency-key': `reused-${target.id}` };
      assert.equal((await admin.call('POST', '/admin/grants', { account: target.id, cents: 100 }, { headers })).status, 201);
      const other = await admin.call('POST', '/admin/grants', { account: target.id, cents: 999 }, { headers });
      assert.equal(other.status, 409);
      assert.equal(other.body.error.code, 'idempotency_key_reused');
      const elsewhere = await h.newAccount();
      const otherAccount = await admin.call('POST', '/admin/grants', { account: elsewhere.id, cents: 100 }, { headers });
      assert.equal(otherAccount.status, 409);
      const long = await admin.call(
        'POST',
        '/admin/grants',
        { account: target.id, cents: 1 },
        { headers: { 'idempotency-key': 'k'.repeat(256) } },
      );
      assert.equal(long.status, 400);
      assert.equal(long.body.error.param, 'idempotency-key');
      assert.equal(await grantEntries(target.id), 1);
      assert.equal(await grantEntries(elsewhere.id), 0);
    });

    test('a NUL character in any dashboard input is a 400 invalid_request, never a 500', async () => {
      const member = new DashboardClient(h.url);
      await member.signUp('nul-tester@example.com');
      const anonymous = new DashboardClient(h.url);
      await anonymous.start();
      // The expected param; undefined where the NUL is in the URL (the server refuses such a URL
      // before any route; the dashboard's own check would name the parameter).
      const cases: Array<[DashboardClient, string, string, unknown, string | null | undefined]> = [
        [anonymous, 'POST', '/signup', { email: 'a\u0000b@example.com', password: 'long enough pw' }, 'email'],
        [anonymous, 'POST', '/signin', { email: 'nul-tester@example.com\u0000', password: 'x' }, 'email'],
        [member, 'POST', '/keys', { name: 'my\u0000key' }, 'name'],
        [member, 'POST', '/keys/%00/revoke', undefined, undefined],
        [member, 'GET', '/usage?days=7&key_id=%00', undefined, undefined],
        [member, 'GET', '/usage?model=bi%00zora', undefined, undefined],
        [member, 'GET', '/billing?before=le_%00', undefined, undefined],
        [member, 'GET', '/generations/req_%00', undefined, undefined],
        [admin, 'POST', '/admin/grants', { account: 'x\u0000@example.com', cents: 1 }, 'account'],
        [admin, 'POST', '/admin/accounts', { email: 'new@example.com', name: '\u0000' }, 'name'],
      ];
      for (const [client, method, path, body, param] of cases) {
        const r = await client.call(method, path, body);
        assert.equal(r.status, 400, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.type, 'invalid_request_error');
        assert.equal(r.body.error.code, 'invalid_request');
        if (param !== undefined) assert.equal(r.body.error.param, param, `${method} ${path}`);
      }
    });

    test('an expired session is refused, and the sweeper deletes expired sessions only', async (t) => {
      // A server of its own, whose clock this test moves past every session's lifetime.
      let moved = 0;
      const own = await startHarness(kind, { clock: { now: () => Date.now() + moved } });
      t.after(() => own.close());
      const old = new DashboardClient(own.url);
      await old.signUp('expiring@example.com');
      const count = async () =>
        Number(
          (
            await own.deps.db
              .selectFrom('sessions')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const before = await count();
      moved += own.deps.config.sessionTtlMs + 1000;
      assert.equal((await old.call('GET', '/me')).status, 401);
      const fresh = new DashboardClient(own.url);
      await fresh.signUp('fresh@example.com');
      const sweeper = new SessionSweeper(own.deps.db, own.deps.clock);
      assert.equal(await sweeper.sweep(), before);
      assert.equal(await count(), 1, 'the live session stays');
      assert.equal((await fresh.call('GET', '/me')).status, 200);
      assert.equal(await sweeper.sweep(), 0);
    });
  });
}

/** GET with a Host header of our choosing (fetch does not let a client forge it). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the NUL check names the parameter, looks into keys and arrays, and survives deep nesting', () => {
  assert.equal(findNul({ '': { id: 'a\u0000' }, body: undefined }), 'id');
  assert.equal(findNul({ '': {}, body: { list: ['ok', { name: 'x\u0000' }] } }), 'body.list[1].name');
  assert.equal(findNul({ '': {}, body: { 'k\u0000': 1 } }), 'body');
  assert.equal(findNul({ '': { q: 'fine' }, body: { a: ['b', 1, null, true] } }), null);
  let deep: unknown = 'x\u0000';
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.equal(findNul({ '': {}, body: deep })?.startsWith('body[0][0]'), true);
});

describe('security headers and the base URL', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness('sqlite');
  });
  after(() => h.close());

  test('the dashboard and its API carry the security headers, with a same-origin CSP', async () => {
    for (const path of ['/', '/dashboard/api/session']) {
      const r = await fetch(`${h.url}${path}`);
      assert.equal(r.status, 200, path);
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.match(csp, /object-src 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|upgrade-insecure-requests/, path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(r.headers.get('strict-transport-security'), null, 'no HSTS over plain http');
      await r.arrayBuffer();
    }
  });

  test('/v1 and /healthz carry none of them', async () => {
    const { key } = await h.newKey((await h.newAccount()).id);
    for (const [path, headers] of [
      ['/v1/models', { authorization: `Bearer ${key}` }],
      ['/v1/models', {}],
      ['/healthz', {}],
    ] as const) {
      const r = await fetch(`${h.url}${path}`, { headers });
      await r.arrayBuffer();
      for (const name of ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'cross-origin-opener-policy']) {
        assert.equal(r.headers.get(name), null, `${path} ${name}`);
      }
    }
  });

  test('a forged Host header is not reflected into the base URL', async () => {
    const port = new URL(h.url).port;
    const r = await getWithHost(`${h.url}/dashboard/api/session`, 'evil.example:666');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).api_base_url, `http://127.0.0.1:${port}/v1`);
    assert.doesNotMatch(r.body, /evil/);
  });

  test('the base URL comes from the listen address: wildcards as loopback, IPv6 in brackets', () => {
    assert.equal(apiBaseUrl({ publicUrl: undefined, host: '0.0.0.0', port: 8080 }, undefined), 'http://127.0.0.1:8080/v1');
    assert.equal(apiBaseUrl({ publicUrl: undefined, host: '::', port: 8080 }, 9000), 'http://localhost:9000/v1');
    assert.equal(apiBaseUrl({ publicUrl: undefined, host: '::1', port: 8080 }, undefined), 'http://[::1]:8080/v1');
    assert.equal(apiBaseUrl({ publicUrl: undefined, host: 'api.internal', port: 80 }, undefined), 'http://api.internal/v1');
    assert.equal(apiBaseUrl({ publicUrl: 'https://api.example.com/', host: '0.0.0.0', port: 8080 }, 8080), 'https://api.example.com/v1');
  });
});

describe('behind an https public URL', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness('sqlite', { env: { BIZORA_PUBLIC_URL: 'https://api.example.com' } });
  });
  after(() => h.close());

  test('HSTS and upgrade-insecure-requests are on, and the base URL is the public one whatever the Host', async () => {
    const r = await getWithHost(`${h.url}/dashboard/api/session`, 'evil.example');
    assert.match(String(r.headers['strict-transport-security']), /max-age=31536000/);
    assert.match(String(r.headers['content-security-policy']), /upgrade-insecure-requests/);
    assert.equal(JSON.parse(r.body).api_base_url, 'https://api.example.com/v1');
  });
});

describe('BIZORA_SIGNUP=closed', () => {
  let h: Harness;
  let admin: DashboardClient;
  before(async () => {
    h = await startHarness('sqlite', { env: { BIZORA_SIGNUP: 'closed' } });
    // The first administrator, as `bizora accounts create --admin` makes it.
    await createAccount(h.deps.db, {
      email: 'root@example.com',
      role: 'admin',
      now: Date.now(),
      passwordHash: await hashPassword('root password!'),
    });
    admin = new DashboardClient(h.url);
    await admin.signIn('root@example.com', 'root password!');
  });
  after(() => h.close());

  test('sign-up is refused with a 403 that says so, and the session tells the web app', async () => {
    const c = new DashboardClient(h.url);
    await c.start();
    const r = await c.call('POST', '/signup', { email: 'outsider@example.com', password: 'long enough pw' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.type, 'permission_error');
    assert.equal(r.body.error.code, 'signup_closed');
    assert.match(r.body.error.message, /closed/);
    assert.equal((await c.call('GET', '/session')).body.signup, 'closed');
    assert.equal(
      await h.deps.db.selectFrom('accounts').select('id').where('email', '=', 'outsider@example.com').executeTakeFirst(),
      undefined,
    );
  });

  test('an administrator creates an account; its owner signs in with the password shown once', async () => {
    const r = await admin.call('POST', '/admin/accounts', { email: 'New.Hire@example.com', name: 'New hire' });
    assert.equal(r.status, 201);
    assert.equal(r.body.account.email, 'new.hire@example.com');
    assert.equal(r.body.account.role, 'member');
    assert.match(r.body.password, /^[0-9A-Za-z]{20}$/);
    const owner = new DashboardClient(h.url);
    assert.equal((await owner.signIn('new.hire@example.com', r.body.password)).email, 'new.hire@example.com');
    const taken = await admin.call('POST', '/admin/accounts', { email: 'new.hire@example.com' });
    assert.equal(taken.status, 409);
    const second = await admin.call('POST', '/admin/accounts', { email: 'second.admin@example.com', role: 'admin' });
    assert.equal(second.body.account.role, 'admin');
    assert.equal((await owner.call('POST', '/admin/accounts', { email: 'sneaky@example.com' })).status, 403);
  });
});
