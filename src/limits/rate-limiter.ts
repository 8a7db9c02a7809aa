// A key's rate limits: requests per minute, tokens per minute and requests at once, counted in
// fixed one-minute windows (a key with --rpm 10 gets exactly 10 in each minute, wherever they
// land). Admission counts a request and its worst case of tokens; its finish corrects the tokens
// to what it used and gives its place back. The counters live in this process (memory-limiter.ts)
// or, shared by every instance, in Redis. What the OpenAI headers say about them is made here.
import type { Logger } from 'pino';
import type { ApiKeyRow } from '../db/schema.ts';

export type RateLimitedKey = Pick<ApiKeyRow, 'id' | 'rpm' | 'tpm' | 'max_concurrency'>;

export type LimitName = 'requests' | 'tokens' | 'concurrency';

export const WINDOW_MS = 60_000;

/** What is left in the key's current window, for the x-ratelimit-* headers and /v1/key. */
export type RateState = { requests: number; tokens: number; inFlight: number; resetMs: number };

export type Admitted = {
  ok: true;
  state: RateState;
  /** The request is over: its tokens corrected to `tokens`, its place given back. Once. */
  finish(tokens: number): void;
};
export type Refused = { ok: false; limit: LimitName; retryAfterMs: number; state: RateState };

export interface RateLimiter {
  /** Admits one request whose worst case is `tokens`, or says which limit refused it and for how long. */
  admit(key: RateLimitedKey, tokens: number, now: number): Promise<Admitted | Refused>;
  /** The key's counters now, without counting anything. */
  peek(key: RateLimitedKey, now: number): Promise<RateState>;
  /** Where it reports trouble (the server's logger, once it exists). */
  setLogger?(log: Pick<Logger, 'warn'>): void;
  close?(): Promise<void>;
}

/** How long a refused request is asked to wait: to the window's end, or a second for requests at once (one may end any moment). */
export const retryAfterMs = (limit: LimitName, endsAt: number, now: number): number => (limit === 'concurrency' ? 1000 : endsAt - now);

export const hasRateLimits = (key: RateLimitedKey): boolean => key.rpm !== null || key.tpm !== null || key.max_concurrency !== null;

/** The window a time falls in, and when it ends. */
export const windowOf = (now: number) => {
  const index = Math.floor(now / WINDOW_MS);
  return { index, endsAt: (index + 1) * WINDOW_MS };
};

/** A duration as OpenAI writes it in x-ratelimit-reset-*: `1s`, `6m0s`, `20ms`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** The OpenAI rate-limit headers for the limits the key has. */
export function rateLimitHeaders(key: RateLimitedKey, state: RateState): Record<string, string> {
  const headers: Record<string, string> = {};
  if (key.rpm !== null) {
    headers['x-ratelimit-limit-requests'] = String(key.rpm);
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, key.rpm - state.requests));
    headers['x-ratelimit-reset-requests'] = duration(state.resetMs);
  }
  if (key.tpm !== null) {
    headers['x-ratelimit-limit-tokens'] = String(key.tpm);
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, key.tpm - state.tokens));
    headers['x-ratelimit-reset-tokens'] = duration(state.resetMs);
  }
  return headers;
}

/**
 * Whether a request may start given the counters: the limit that refuses it, if any. A request
 * whose worst case alone is more than the key's tpm never fits, and is the caller's to refuse
 * (as a 400) before this is asked.
 */
export function refusingLimit(key: RateLimitedKey, state: RateState, tokens: number): LimitName | null {
  if (key.rpm !== null && state.requests + 1 > key.rpm) return 'requests';
  if (key.tpm !== null && state.tokens + tokens > key.tpm) return 'tokens';
  if (key.max_concurrency !== null && state.inFlight + 1 > key.max_concurrency) return 'concurrency';
  return null;
}
