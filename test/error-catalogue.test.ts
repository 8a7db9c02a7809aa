// The error catalogue against what users see: the README's error table lists exactly the errors
// of src/errors.ts (status, type and the body's code, both ways), and every one of them is
// reached over HTTP from the real server, as a client would meet it, with that status, type,
// code and the headers the catalogue promises (x-should-retry, WWW-Authenticate).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { MAGIC } from '../src/backends/simulator.ts';
import { ApiError, CATALOGUE, type ErrorCode } from '../src/errors.ts';
import { createAdminKey } from '../src/management/admin-keys.ts';
import { DashboardClient } from './support/dashboard-client.ts';
import { type Harness, startHarness } from './support/harness.ts';
import { rawHttp } from './support/raw-http.ts';

type Seen = { status: number; headers: Record<string, string>; body: { error: Record<string, unknown> } };

/** The (status, type, code) rows of the README's error table; `(none)` is a body without `code`. */
function readmeRows(): Set<string> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('Errors below the routes'));
  const rows = new Set<string>();
  for (const line of section.split('\n')) {
    const m = /^\| (\d{3}) \| `([a-z_]+)` \| (`[a-z_]+`|(?:\(none\))) \|/.exec(line);
    if (m) rows.add(`${m[1]} ${m[2]} ${(m[3] as string).replaceAll('`', '')}`);
  }
  return rows;
}

const rowOf = (code: ErrorCode) => {
  const e = new ApiError(code);
  const body = e.toBody().error;
  return `${e.status} ${e.type} ${'code' in body ? String(body.code) : '(none)'}`;
};

const API_KEY_ERRORS: ErrorCode[] = ['missing_api_key', 'invalid_api_key', 'conflicting_api_keys', 'invalid_admin_key'];

describe('the error catalogue, the README and the server agree', () => {
  let h: Harness;
  let closed: Harness;
  let shedding: Harness;
  let key: string;
  let poorKey: string;
  let member: DashboardClient;
  let admin: DashboardClient;

  before(async () => {
    [h, closed, shedding] = await Promise.all([
      startHarness('sqlite', { env: { BIZORA_CLIENT_TIMEOUT_MS: '300', BIZORA_BODY_LIMIT_BYTES: '65536' } }),
      startHarness('sqlite', { env: { BIZORA_SIGNUP: 'closed' } }),
      // A heap limit every heap exceeds: the server sheds load from its first sample on.
      startHarness('sqlite', { env: { BIZORA_MAX_HEAP_USED_MB: '1' } }),
    ]);
    admin = new DashboardClient(h.url);
    await admin.signUp('admin@example.com'); // the first account on the database
    const rich = await h.newAccount({ cents: 1000 });
    key = (await h.newKey(rich.id)).key;
    const poor = await h.newAccount({ cents: 0 });
    poorKey = (await h.newKey(poor.id)).key;
    member = new DashboardClient(h.url);
    await member.signUp('member@example.com');
  });
  after(() => Promise.all([h.close(), closed.close(), shedding.close()]));

  const v1 = async (path: string, init: RequestInit = {}, on = h): Promise<Seen> => {
    const res = await fetch(`${on.baseURL}${path}`, init);
    return { status: res.status, headers: Object.fromEntries(res.headers), body: (await res.json()) as Seen['body'] };
  };
  const chat = (body: unknown, k = key, extra: Record<string, string> = {}) =>
    v1('/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json', ...extra },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const say = (content: string) => chat({ model: 'bizora', messages: [{ role: 'user', content }] });
  const dash = async (c: DashboardClient, method: string, path: string, body?: unknown, opts?: { csrf?: boolean }): Promise<Seen> => {
    const r = await c.call(method, path, body, opts);
    return { status: r.status, headers: Object.fromEntries(r.headers), body: r.body };
  };
  const raw = async (bytes: string, opts = {}): Promise<Seen> => {
    const r = await rawHttp(Number(new URL(h.url).port), bytes, { timeoutMs: 5000, ...opts });
    return { status: r.status, headers: r.headers, body: JSON.parse(r.body) };
  };

  /** How a client meets each error. */
  const reach: Record<ErrorCode, () => Promise<Seen>> = {
    invalid_json: () => chat('{"model": "bizora",'),
    invalid_request: () => chat({ model: 'bizora' }),
    malformed_request: () => raw('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
    json_too_deep: () => chat(`{"model":"bizora","messages":${'['.repeat(70)}${']'.repeat(70)}}`),
    invalid_text: () => v1('/generation?id=a%00b', { headers: { authorization: `Bearer ${key}` } }),
    missing_api_key: () => v1('/models'),
    invalid_api_key: () => v1('/models', { headers: { authorization: 'Bearer sk_live_not_a_key' } }),
    conflicting_api_keys: async () => {
      const other = (await h.newKey((await h.newAccount()).id)).key;
      return v1('/models', { headers: { authorization: `Bearer ${key}`, 'x-api-key': other } });
    },
    not_signed_in: () => dash(new DashboardClient(h.url), 'GET', '/me'),
    invalid_credentials: async () => {
      const c = new DashboardClient(h.url);
      await c.start();
      return dash(c, 'POST', '/signin', { email: 'member@example.com', password: 'not the password' });
    },
    insufficient_balance: () => chat({ model: 'bizora', messages: [{ role: 'user', content: 'hello' }] }, poorKey),
    permission_denied: () => say(MAGIC.forbidden),
    csrf_invalid: () => dash(member, 'POST', '/keys', { name: 'x' }, { csrf: false }),
    admin_only: () => dash(member, 'GET', '/admin/accounts'),
    signup_closed: async () => {
      const c = new DashboardClient(closed.url);
      await c.start();
      return dash(c, 'POST', '/signup', { email: 'new@example.com', password: 'a long enough password' });
    },
    route_not_found: () => v1('/nothing-here', { headers: { authorization: `Bearer ${key}` } }),
    model_not_found: () => v1('/models/no-such-model', { headers: { authorization: `Bearer ${key}` } }),
    generation_not_found: () => v1('/generation?id=req_nothing', { headers: { authorization: `Bearer ${key}` } }),
    key_not_found: () => dash(member, 'POST', '/keys/key_nothing/revoke'),
    account_not_found: () => dash(admin, 'POST', '/admin/grants', { account: 'nobody@example.com', cents: 1 }),
    method_not_allowed: () => v1('/models', { method: 'DELETE', headers: { authorization: `Bearer ${key}` } }),
    // Headers that never end: cut off at BIZORA_CLIENT_TIMEOUT_MS (300 ms here).
    request_timeout: () => raw('GET /healthz HTTP/1.1\r\nHost: x\r\n', { untilClose: true }),
    email_taken: () => dash(admin, 'POST', '/admin/accounts', { email: 'member@example.com' }),
    idempotency_key_reused: async () => {
      const account = (await h.newAccount()).id;
      const grant = (cents: number) => admin.call('POST', '/admin/grants', { account, cents }, { headers: { 'idempotency-key': 'k-1' } });
      assert.equal((await grant(5)).status, 201);
      const r = await grant(6);
      return { status: r.status, headers: Object.fromEntries(r.headers), body: r.body };
    },
    invalid_admin_key: () => v1('/admin/accounts', { headers: { authorization: `Bearer ${key}` } }),
    idempotency_key_required: async () => {
      const adminKey = (await createAdminKey(h.deps.db, { name: 'catalogue', now: Date.now() })).key;
      const account = (await h.newAccount()).id;
      return v1(`/admin/accounts/${account}/credits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ cents: 1 }),
      });
    },
    body_too_large: () => chat({ model: 'bizora', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }),
    uri_too_long: () => v1(`/models/${'x'.repeat(9000)}`, { headers: { authorization: `Bearer ${key}` } }),
    unsupported_media_type: () => chat('hello', key, { 'content-type': 'text/plain' }),
    expectation_failed: () => raw('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}'),
    too_many_attempts: async () => {
      const c = new DashboardClient(h.url);
      await c.start();
      for (let i = 0; i < 20; i++) {
        const r = await dash(c, 'POST', '/signin', { email: 'admin@example.com', password: `guess ${i}` });
        if (r.status === 429) return r;
      }
      assert.fail('no 429 after 20 wrong passwords');
    },
    rate_limited: () => say(MAGIC.rateLimit),
    headers_too_large: () => raw(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`),
    internal_error: () => say(MAGIC.internalError),
    upstream_error: () => say(MAGIC.serverError),
    service_unavailable: async () => {
      // Requests before the first heap sample (250 ms) are served as usual.
      for (let i = 0; i < 100; i++) {
        const r = await v1('/models', { headers: { authorization: 'Bearer sk_live_any' } }, shedding);
        if (r.status === 503) return r;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.fail('never shed');
    },
    upstream_timeout: () => say(MAGIC.timeout),
  };

  test('the README lists every error of the catalogue, and no other', () => {
    const documented = readmeRows();
    const catalogued = new Set((Object.keys(CATALOGUE) as ErrorCode[]).map(rowOf));
    assert.deepEqual([...catalogued].filter((r) => !documented.has(r)).sort(), [], 'in the catalogue, not in the README');
    assert.deepEqual([...documented].filter((r) => !catalogued.has(r)).sort(), [], 'in the README, not in the catalogue');
  });

  test('every error has a way to reach it here', () => {
    assert.deepEqual(Object.keys(reach).sort(), Object.keys(CATALOGUE).sort());
  });

  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    test(`${code} reaches a client as ${rowOf(code)}`, async () => {
      const seen = await reach[code]();
      const entry = CATALOGUE[code];
      const expected = new ApiError(code).toBody().error;
      assert.equal(seen.status, entry.status, JSON.stringify(seen.body));
      assert.equal(seen.body.error.type, entry.type);
      assert.equal(seen.body.error.code, expected.code);
      assert.equal(typeof seen.body.error.message, 'string');
      assert.ok((seen.body.error.message as string).length > 0);
      assert.equal(seen.headers['x-should-retry'], entry.retry ? undefined : 'false');
      assert.equal(seen.headers['www-authenticate'], API_KEY_ERRORS.includes(code) ? 'Bearer' : undefined);
      assert.match(seen.headers['x-request-id'] ?? '', /^req_/);
    });
  }
});
