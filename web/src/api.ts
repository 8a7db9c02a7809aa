// The dashboard API client: JSON in and out, the session cookie (sent by the browser) and the
// CSRF token (sent by us on every state-changing request).
// The shapes come from the server's own route schemas (the same ones that validate, serialise
// and publish the OpenAPI document at /openapi.json): a type-only import, nothing of the server
// is bundled.
import type { Static } from 'typebox';
import type { AccountCreated, AccountView, SessionView } from '../../src/accounts/schemas.ts';
import type { BillingView, GrantResult, LedgerEntryView } from '../../src/billing/schemas.ts';
import type { ApiKeyView, CreatedKey, KeyLimitsChange, RotatedKey } from '../../src/keys/schemas.ts';
import type { DailyUsage as DailyUsageSchema, GenerationView, UsageView } from '../../src/usage/schemas.ts';

export type Account = Static<typeof AccountView>;
export type ApiKey = Static<typeof ApiKeyView>;
export type KeyChange = Static<typeof KeyLimitsChange>;
export type LedgerEntry = Static<typeof LedgerEntryView>;
export type Generation = Static<typeof GenerationView>;
export type DailyUsage = Static<typeof DailyUsageSchema>;
type Session = Static<typeof SessionView>;

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
    readonly param: string | null,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onSignedOut: () => void = () => {};

export function setSignedOutHandler(fn: () => void): void {
  onSignedOut = fn;
}

async function call<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const res = await fetch(`/dashboard/api${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data as { error?: { message?: string; code?: string; param?: string } } | null)?.error;
    if (err?.code === 'not_signed_in') onSignedOut();
    throw new ApiFailure(res.status, err?.message ?? `Request failed (${res.status})`, err?.code ?? null, err?.param ?? null);
  }
  return data as T;
}

export const api = {
  async session() {
    const s = await call<Session>('GET', '/session');
    csrfToken = s.csrf_token;
    return s;
  },
  signUp: (email: string, password: string, name?: string) =>
    call<{ account: Account }>('POST', '/signup', { email, password, ...(name ? { name } : {}) }),
  signIn: (email: string, password: string) => call<{ account: Account }>('POST', '/signin', { email, password }),
  signOut: () => call<unknown>('POST', '/signout'),
  me: () => call<{ account: Account }>('GET', '/me'),
  keys: () => call<{ data: ApiKey[] }>('GET', '/keys'),
  createKey: (name: string, mode: 'live' | 'test', change: KeyChange = {}) =>
    call<Static<typeof CreatedKey>>('POST', '/keys', { name, mode, ...change }),
  updateKey: (id: string, change: KeyChange) => call<ApiKey>('PATCH', `/keys/${encodeURIComponent(id)}`, change),
  rotateKey: (id: string, graceSeconds: number) =>
    call<Static<typeof RotatedKey>>('POST', `/keys/${encodeURIComponent(id)}/rotate`, { grace_seconds: graceSeconds }),
  revokeKey: (id: string) => call<ApiKey>('POST', `/keys/${encodeURIComponent(id)}/revoke`),
  billing: (before?: string) =>
    call<Static<typeof BillingView>>('GET', `/billing?limit=20${before ? `&before=${encodeURIComponent(before)}` : ''}`),
  accounts: () => call<{ data: Account[] }>('GET', '/admin/accounts'),
  createAccount: (email: string, name: string, role: 'member' | 'admin') =>
    call<Static<typeof AccountCreated>>('POST', '/admin/accounts', { email, role, ...(name ? { name } : {}) }),
  /** The same idempotency key again (a retry of the same grant) never grants twice. */
  grant: (account: string, cents: number, reason: string, idempotencyKey: string) =>
    call<Static<typeof GrantResult>>(
      'POST',
      '/admin/grants',
      { account, cents, ...(reason ? { reason } : {}) },
      { 'idempotency-key': idempotencyKey },
    ),
  usage: (q: { days: number; key_id?: string; model?: string }) => {
    const params = new URLSearchParams({ days: String(q.days) });
    if (q.key_id) params.set('key_id', q.key_id);
    if (q.model) params.set('model', q.model);
    return call<Static<typeof UsageView>>('GET', `/usage?${params}`);
  },
  generation: (id: string) => call<Generation>('GET', `/generations/${encodeURIComponent(id)}`),
};
