// The dashboard API client: JSON in and out, the session cookie (sent by the browser) and the
// CSRF token (sent by us on every state-changing request).
export type Account = {
  id: string;
  email: string;
  name: string | null;
  role: 'admin' | 'member';
  balance_cents: number;
  available_cents: number;
  held_cents: number;
};

export type ApiKey = {
  id: string;
  name: string;
  preview: string;
  mode: 'live' | 'test';
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  status: 'active' | 'revoked' | 'expired';
};

export type LedgerEntry = {
  id: string;
  kind: 'grant' | 'usage' | 'release' | 'adjustment';
  amount_cents: number;
  balance_after_cents: number;
  held_cents: number | null;
  released_cents: number | null;
  request_id: string | null;
  reason: string | null;
  created_at: number;
};

export type Generation = {
  id: string;
  request_id: string;
  created: number;
  model: string;
  backend: string;
  mode: 'live' | 'test';
  key_id: string;
  stream: boolean;
  status: 'succeeded' | 'failed' | 'cancelled';
  http_status: number;
  finish_reason: string | null;
  error_code: string | null;
  latency_ms: number;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cost_cents: number; held_cents: number };
};

export type DailyUsage = { date: string; requests: number; prompt_tokens: number; completion_tokens: number; cost_cents: number };

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
    const s = await call<{
      account: Account | null;
      csrf_token: string;
      signup: 'open' | 'closed';
      signup_credit_cents: number;
      api_base_url: string;
    }>('GET', '/session');
    csrfToken = s.csrf_token;
    return s;
  },
  signUp: (email: string, password: string, name?: string) =>
    call<{ account: Account }>('POST', '/signup', { email, password, ...(name ? { name } : {}) }),
  signIn: (email: string, password: string) => call<{ account: Account }>('POST', '/signin', { email, password }),
  signOut: () => call<unknown>('POST', '/signout'),
  me: () => call<{ account: Account }>('GET', '/me'),
  keys: () => call<{ data: ApiKey[] }>('GET', '/keys'),
  createKey: (name: string, mode: 'live' | 'test') => call<ApiKey & { key: string }>('POST', '/keys', { name, mode }),
  revokeKey: (id: string) => call<ApiKey>('POST', `/keys/${encodeURIComponent(id)}/revoke`),
  billing: (before?: string) =>
    call<{ account: Account; entries: LedgerEntry[]; next_before: string | null }>(
      'GET',
      `/billing?limit=20${before ? `&before=${encodeURIComponent(before)}` : ''}`,
    ),
  accounts: () => call<{ data: Account[] }>('GET', '/admin/accounts'),
  createAccount: (email: string, name: string, role: 'member' | 'admin') =>
    call<{ account: Account; password: string }>('POST', '/admin/accounts', { email, role, ...(name ? { name } : {}) }),
  /** The same idempotency key again (a retry of the same grant) never grants twice. */
  grant: (account: string, cents: number, reason: string, idempotencyKey: string) =>
    call<{ balance_cents: number }>(
      'POST',
      '/admin/grants',
      { account, cents, ...(reason ? { reason } : {}) },
      { 'idempotency-key': idempotencyKey },
    ),
  usage: (q: { days: number; key_id?: string; model?: string }) => {
    const params = new URLSearchParams({ days: String(q.days) });
    if (q.key_id) params.set('key_id', q.key_id);
    if (q.model) params.set('model', q.model);
    return call<{
      daily: DailyUsage[];
      recent: Generation[];
      keys: Array<Pick<ApiKey, 'id' | 'name' | 'preview' | 'mode'>>;
      models: string[];
    }>('GET', `/usage?${params}`);
  },
  generation: (id: string) => call<Generation>('GET', `/generations/${encodeURIComponent(id)}`),
};
