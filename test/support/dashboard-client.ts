// A browser-like client of the dashboard API for HTTP tests: keeps cookies, sends the CSRF token.
// Tests read the dashboard's JSON answers field by field and assert on them.
// biome-ignore lint/suspicious/noExplicitAny: untyped JSON, checked by the assertions
type Json = any;

export class DashboardClient {
  private cookies = new Map<string, string>();
  csrf = '';

  /** `headers` go with every call (e.g. X-Forwarded-For: this client's address behind a proxy). */
  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  rawCookies(): Map<string, string> {
    return this.cookies;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: { csrf?: boolean; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: Json; headers: Headers }> {
    const headers: Record<string, string> = { ...this.headers, ...opts.headers };
    if (this.cookies.size) headers.cookie = this.cookieHeader();
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.csrf !== false && this.csrf) headers['x-csrf-token'] = this.csrf;
    const res = await fetch(`${this.url}/dashboard/api${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, ...v] = (pair ?? '').split('=');
      if (!k) continue;
      const value = v.join('=');
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(k.trim());
      else this.cookies.set(k.trim(), value);
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  }

  async start(): Promise<void> {
    const r = await this.call('GET', '/session');
    this.csrf = r.body.csrf_token;
  }

  async signUp(email: string, password = 'correct horse battery'): Promise<Json> {
    if (!this.csrf) await this.start();
    const r = await this.call('POST', '/signup', { email, password });
    if (r.status !== 201) throw new Error(`sign-up failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.account;
  }

  async signIn(email: string, password = 'correct horse battery'): Promise<Json> {
    if (!this.csrf) await this.start();
    const r = await this.call('POST', '/signin', { email, password });
    if (r.status !== 200) throw new Error(`sign-in failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.account;
  }
}
