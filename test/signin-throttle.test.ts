// Sign-in throttling and sign-up limits: the throttle on its own with a clock the test moves,
// then over HTTP behind a trusted proxy (each client its own X-Forwarded-For address). The
// throttle keeps no state in the database, so the HTTP half runs on SQLite only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addressKey, BoundedCounts, DEFAULT_LIMITS, SigninThrottle } from '../src/accounts/signin-throttle.ts';
import { DashboardClient } from './support/dashboard-client.ts';
import { type Harness, startHarness } from './support/harness.ts';

function throttleAt(start = 1_700_000_000_000, limits = DEFAULT_LIMITS) {
  const clock = { t: start, now: () => clock.t };
  return { clock, throttle: new SigninThrottle(clock, limits) };
}

/** One attempt that fails its password check; whether it was let through. */
const fail = (t: SigninThrottle, email: string, ip: string): boolean => {
  const v = t.begin(email, ip);
  if (v.allowed) v.attempt.failed();
  return v.allowed;
};

describe('the sign-in throttle', () => {
  test("ten failures lock the guesser's address out of the account, while the owner gets in from elsewhere after a second", () => {
    const { clock, throttle } = throttleAt();
    for (let i = 0; i < 10; i++) assert.equal(fail(throttle, 'owner@example.com', '203.0.113.9'), true);
    const locked = throttle.begin('owner@example.com', '203.0.113.9');
    assert.equal(locked.allowed, false);
    assert.ok(!locked.allowed && locked.retryAfterSeconds > 14 * 60, 'for the rest of the 15-minute window');

    const tooSoon = throttle.begin('owner@example.com', '198.51.100.7');
    assert.ok(!tooSoon.allowed && tooSoon.retryAfterSeconds === 1, 'the account itself is only slowed down');
    clock.t += 1000;
    const owner = throttle.begin('owner@example.com', '198.51.100.7');
    assert.ok(owner.allowed);
    owner.attempt.succeeded();
    assert.equal(throttle.begin('owner@example.com', '203.0.113.9').allowed, false, 'the guesser stays locked out');
    clock.t += 15 * 60 * 1000;
    assert.equal(throttle.begin('owner@example.com', '203.0.113.9').allowed, true, 'until the window ends');
  });

  test('a guesser spread over many addresses gets ten tries, then attempts spaced out to at most one a minute', () => {
    const { clock, throttle } = throttleAt();
    let admitted = 0;
    let longestWait = 0;
    let sinceLast = 0;
    // A new address every 100 ms for ten minutes.
    for (let i = 0; i < 6000; i++) {
      if (fail(throttle, 'target@example.com', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)) {
        admitted++;
        longestWait = Math.max(longestWait, sinceLast);
        sinceLast = 0;
      }
      clock.t += 100;
      sinceLast += 100;
    }
    // 10 free, then 1 + 2 + 4 + 8 + 16 + 32 s, then one a minute: 16 + 8 in the remaining ~9 minutes.
    assert.ok(admitted >= 20 && admitted <= 26, `admitted ${admitted}`);
    assert.ok(longestWait <= 60_100, `the longest wait between two attempts was ${longestWait} ms`);
  });

  test('one address is refused after 50 failures over any emails, and a success gives its attempt back', () => {
    const { throttle } = throttleAt();
    const ok = throttle.begin('mine@example.com', '192.0.2.1');
    assert.ok(ok.allowed);
    ok.attempt.succeeded();
    for (let i = 0; i < 50; i++) assert.equal(fail(throttle, `user${i}@example.com`, '192.0.2.1'), true, `attempt ${i}`);
    assert.equal(throttle.begin('someone-else@example.com', '192.0.2.1').allowed, false);
    assert.equal(throttle.begin('someone-else@example.com', '192.0.2.2').allowed, true);
  });

  test('flooding the tables with other emails never forgets an account that is under attack', () => {
    const { throttle } = throttleAt(1_700_000_000_000, { ...DEFAULT_LIMITS, capacity: 1000, addressFailures: 1e9 });
    for (let i = 0; i < 10; i++) fail(throttle, 'victim@example.com', '203.0.113.5');
    assert.equal(throttle.begin('victim@example.com', '203.0.113.5').allowed, false);
    // 60,000 one-off failures on other emails from other addresses: 60 times the capacity.
    for (let i = 0; i < 60_000; i++) fail(throttle, `flood${i}@example.com`, `10.1.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(throttle.begin('victim@example.com', '203.0.113.5').allowed, false, 'still locked out');
    assert.ok(throttle.size <= 8 * 1000, `memory stays bounded: ${throttle.size} entries`);
  });

  test('the bounded table evicts only keys with few counts', () => {
    const counts = new BoundedCounts(60_000, 3, 10);
    for (let i = 0; i < 3; i++) counts.add('hot', 0);
    for (let i = 0; i < 1000; i++) counts.add(`cold${i}`, 0);
    assert.equal(counts.get('hot', 1)?.count, 3);
    assert.ok(counts.size <= 20);
    assert.equal(counts.get('hot', 60_000), undefined, 'a key is forgotten when its window ends');
  });

  test('IPv6 addresses count by their /64, IPv4-mapped ones as IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), addressKey('2001:db8:1:2:ffff::1'));
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  });

  test('an address may sign up ten times an hour', () => {
    const { clock, throttle } = throttleAt();
    for (let i = 0; i < 10; i++) assert.equal(throttle.signup('192.0.2.44').allowed, true);
    const refused = throttle.signup('192.0.2.44');
    assert.ok(!refused.allowed && refused.retryAfterSeconds > 59 * 60);
    assert.equal(throttle.signup('192.0.2.45').allowed, true);
    clock.t += 60 * 60 * 1000;
    assert.equal(throttle.signup('192.0.2.44').allowed, true);
  });
});

describe('sign-in and sign-up over HTTP behind a trusted proxy (BIZORA_TRUST_PROXY=true)', () => {
  let h: Harness;
  let skipped = 0;
  before(async () => {
    h = await startHarness('sqlite', {
      env: { BIZORA_TRUST_PROXY: 'true', BIZORA_SIGNUP_CREDIT_CENTS: '100' },
      clock: { now: () => Date.now() + skipped },
    });
    await new DashboardClient(h.url, { 'x-forwarded-for': '198.51.100.1' }).signUp('owner@example.com', 'the right password');
  });
  after(() => h.close());

  const signIn = (c: DashboardClient, email: string, password: string) => c.call('POST', '/signin', { email, password });

  async function client(address: string): Promise<DashboardClient> {
    const c = new DashboardClient(h.url, { 'x-forwarded-for': address });
    await c.start();
    return c;
  }

  test('41 concurrent sign-ins for one email from one address: only 10 passwords are checked', async () => {
    const c = await client('203.0.113.41');
    const answers = await Promise.all(Array.from({ length: 41 }, (_, i) => signIn(c, 'owner@example.com', `wrong ${i} password`)));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 401).length, 10);
    assert.equal(statuses.filter((s) => s === 429).length, 31);
    const retryAfter = answers.find((a) => a.status === 429)?.headers.get('retry-after');
    assert.ok(Number(retryAfter) > 0);
    skipped += 15 * 60 * 1000;
  });

  test('41 concurrent sign-ins for one email from 41 addresses: still only 10 passwords are checked', async () => {
    const clients = await Promise.all(Array.from({ length: 41 }, (_, i) => client(`10.9.0.${i + 1}`)));
    const answers = await Promise.all(clients.map((c, i) => signIn(c, 'owner@example.com', `wrong ${i} password`)));
    assert.equal(answers.filter((a) => a.status === 401).length, 10);
    assert.equal(answers.filter((a) => a.status === 429).length, 31);
    // The owner, from their own address, waits a second and gets in.
    const owner = await client('198.51.100.1');
    skipped += 1000;
    assert.equal((await signIn(owner, 'owner@example.com', 'the right password')).status, 200);
    skipped += 15 * 60 * 1000;
  });

  test("the guesser's address is locked out; the owner signs in from theirs (X-Forwarded-For is each client's)", async () => {
    const guesser = await client('203.0.113.66');
    for (let i = 0; i < 10; i++) assert.equal((await signIn(guesser, 'owner@example.com', `guess ${i} password`)).status, 401);
    assert.equal((await signIn(guesser, 'owner@example.com', 'the right password')).status, 429);
    skipped += 1000;
    const owner = await client('198.51.100.1');
    assert.equal((await signIn(owner, 'owner@example.com', 'the right password')).status, 200);
    skipped += 15 * 60 * 1000;
  });

  test('sign-up is limited per address: the eleventh in an hour is refused with Retry-After', async () => {
    const c = await client('192.0.2.200');
    for (let i = 0; i < 10; i++) {
      const r = await c.call('POST', '/signup', { email: `many${i}@example.com`, password: 'a long password' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const refused = await c.call('POST', '/signup', { email: 'many10@example.com', password: 'a long password' });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.type, 'rate_limit_error');
    assert.ok(Number(refused.headers.get('retry-after')) > 59 * 60);
    const elsewhere = await client('192.0.2.201');
    assert.equal((await elsewhere.call('POST', '/signup', { email: 'many10@example.com', password: 'a long password' })).status, 201);
  });

  test('sign-up does not say whether an email is registered: a wrong password gets the failed sign-in answer', async () => {
    const c = await client('192.0.2.77');
    const signUp = await c.call('POST', '/signup', { email: 'owner@example.com', password: 'not the password' });
    const failedSignIn = await signIn(c, 'owner@example.com', 'not the password either');
    assert.equal(signUp.status, 401);
    assert.deepEqual(signUp.body, failedSignIn.body);
    assert.equal(signUp.body.error.code, 'invalid_credentials');
    assert.doesNotMatch(JSON.stringify(signUp.body), /exist|taken|registered/i);
    // The right password on the sign-up form signs the owner in (200, not a new account's 201).
    const again = await client('192.0.2.78');
    const right = await again.call('POST', '/signup', { email: 'OWNER@example.com', password: 'the right password' });
    assert.equal(right.status, 200);
    assert.equal(right.body.account.email, 'owner@example.com');
    assert.equal(right.body.account.balance_cents, 100, 'no second sign-up credit');
    // Its two failures on the owner's email are past the window for whatever test runs next.
    skipped += 15 * 60 * 1000;
  });

  test('the session cookie is Secure when the proxy says the request came over https', async () => {
    const https = new DashboardClient(h.url, { 'x-forwarded-for': '192.0.2.90', 'x-forwarded-proto': 'https' });
    await https.start();
    const r = await https.call('POST', '/signin', { email: 'owner@example.com', password: 'the right password' });
    assert.equal(r.status, 200);
    const secure = r.headers.getSetCookie().find((s) => s.startsWith('bizora_session='));
    assert.match(secure ?? '', /;\s*Secure/i);
    const plain = await client('192.0.2.91');
    const p = await signIn(plain, 'owner@example.com', 'the right password');
    assert.doesNotMatch(p.headers.getSetCookie().find((s) => s.startsWith('bizora_session=')) ?? 'none', /;\s*Secure/i);
  });
});

describe('without BIZORA_TRUST_PROXY (the default)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness('sqlite');
    await new DashboardClient(h.url).signUp('owner@example.com', 'the right password');
  });
  after(() => h.close());

  test('X-Forwarded-For and X-Forwarded-Proto are ignored: every request is the connecting address, over http', async () => {
    const guesser = new DashboardClient(h.url);
    await guesser.start();
    for (let i = 0; i < 10; i++) {
      const r = await guesser.call(
        'POST',
        '/signin',
        { email: 'owner@example.com', password: `guess ${i} password` },
        { headers: { 'x-forwarded-for': `10.7.0.${i}` } },
      );
      assert.equal(r.status, 401);
    }
    const claimsOther = await guesser.call(
      'POST',
      '/signin',
      { email: 'owner@example.com', password: 'the right password' },
      { headers: { 'x-forwarded-for': '198.51.100.200', 'x-forwarded-proto': 'https' } },
    );
    assert.equal(claimsOther.status, 429, 'a claimed address does not escape the lock-out');
    const https = new DashboardClient(h.url, { 'x-forwarded-proto': 'https' });
    await https.start();
    const csrf = https.rawCookies().get('bizora_csrf');
    assert.ok(csrf);
    const session = await https.call('GET', '/session');
    assert.equal(
      session.headers.getSetCookie().some((c) => /;\s*Secure/i.test(c)),
      false,
    );
  });
});
