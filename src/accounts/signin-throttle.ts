// Limits password guessing and account creation on the dashboard. Three limits on sign-in,
// checked together, each counting an attempt when it is let through (before the password is
// checked, so concurrent guesses cannot all get past a limit that has room for one more):
//
// - per (email, address): 10 failures in 15 minutes, then that address is refused for that
//   email until the window ends. The guesser is locked out; the owner, elsewhere, is not.
// - per address: 50 failures in 15 minutes (on any emails), then the address is refused. One
//   address cannot spray guesses over many accounts, nor flood the tables below.
// - per email, from anywhere: after 10 failures, attempts are spaced out: 1 s, then 2, 4, …,
//   at most 60 s between two attempts; one that comes sooner is refused with Retry-After. This
//   only slows: the owner gets in after at most a minute's wait, while a guesser spread over
//   many addresses gets at most one guess a minute on the account.
//
// A successful sign-in clears its (email, address) and email counts and gives the address its
// attempt back. Sign-ups are limited per address (10 an hour). IPv6 addresses count by /64, the
// block one subscriber usually gets.
//
// The tables are bounded (BoundedCounts): flooding them with other emails evicts only keys with
// few failures, never the ones that are limiting someone. In-process state: a guesser spread
// over several instances gets each instance's allowance.
import type { Clock } from '../lib/clock.ts';

export type ThrottleLimits = {
  windowMs: number;
  pairFailures: number;
  addressFailures: number;
  emailFreeFailures: number;
  emailMaxSpacingMs: number;
  signupsPerAddress: number;
  signupWindowMs: number;
  /** Entries kept per table for keys with few failures, and again for keys with many. */
  capacity: number;
};

export const DEFAULT_LIMITS: ThrottleLimits = {
  windowMs: 15 * 60 * 1000,
  pairFailures: 10,
  addressFailures: 50,
  emailFreeFailures: 10,
  emailMaxSpacingMs: 60_000,
  signupsPerAddress: 10,
  signupWindowMs: 60 * 60 * 1000,
  capacity: 50_000,
};

type Entry = { count: number; start: number; nextAt: number };

/**
 * Counts per key in a fixed window, in bounded memory. Keys below `hotAt` live in a table that
 * forgets its oldest key when full; a key reaching `hotAt` moves to a second table of its own
 * capacity. Flooding with new keys (one failure each) therefore only ever evicts other
 * one-failure keys: the keys that matter stay until their window ends.
 */
export class BoundedCounts {
  private readonly cold = new Map<string, Entry>();
  private readonly hot = new Map<string, Entry>();

  constructor(
    private readonly windowMs: number,
    private readonly hotAt: number,
    private readonly capacity: number,
  ) {}

  get size(): number {
    return this.cold.size + this.hot.size;
  }

  get(key: string, now: number): Entry | undefined {
    const e = this.hot.get(key) ?? this.cold.get(key);
    if (e && now - e.start >= this.windowMs) {
      this.delete(key);
      return undefined;
    }
    return e;
  }

  /** Counts one more for `key`; returns its entry. */
  add(key: string, now: number): Entry {
    const e = this.get(key, now);
    if (!e) {
      const fresh = { count: 1, start: now, nextAt: 0 };
      this.put(this.hotAt <= 1 ? this.hot : this.cold, key, fresh);
      return fresh;
    }
    e.count++;
    if (e.count === this.hotAt && this.cold.delete(key)) this.put(this.hot, key, e);
    return e;
  }

  /** Gives one back (a success after an attempt was counted). */
  refund(key: string): void {
    const e = this.hot.get(key) ?? this.cold.get(key);
    if (e && e.count > 0) e.count--;
  }

  delete(key: string): void {
    this.cold.delete(key);
    this.hot.delete(key);
  }

  private put(table: Map<string, Entry>, key: string, e: Entry): void {
    if (table.size >= this.capacity) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = table.keys().next();
      if (!oldest.done) table.delete(oldest.value);
    }
    table.set(key, e);
  }
}

/** The key an address is counted under: IPv4 as is, IPv6 by its /64. */
export function addressKey(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1] as string;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export type Verdict = { allowed: true; attempt: SigninAttempt } | { allowed: false; retryAfterSeconds: number };
export type SigninAttempt = { succeeded(): void; failed(): void };

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class SigninThrottle {
  private readonly pairs: BoundedCounts;
  private readonly addresses: BoundedCounts;
  private readonly emails: BoundedCounts;
  private readonly signups: BoundedCounts;

  constructor(
    private readonly clock: Clock,
    private readonly limits: ThrottleLimits = DEFAULT_LIMITS,
  ) {
    const l = limits;
    this.pairs = new BoundedCounts(l.windowMs, Math.min(3, l.pairFailures), l.capacity);
    this.addresses = new BoundedCounts(l.windowMs, Math.min(3, l.addressFailures), l.capacity);
    this.emails = new BoundedCounts(l.windowMs, Math.min(3, l.emailFreeFailures), l.capacity);
    this.signups = new BoundedCounts(l.signupWindowMs, Math.min(3, l.signupsPerAddress), l.capacity);
  }

  /**
   * Whether a sign-in attempt for `email` from client address `ip` may check its password now.
   * If it may, it is counted as a failure at once; report the outcome on the attempt.
   */
  begin(email: string, ip: string): Verdict {
    const now = this.clock.now();
    const address = addressKey(ip);
    const pairKey = `${email}\n${address}`;
    const { limits: l } = this;
    const pair = this.pairs.get(pairKey, now);
    if (pair && pair.count >= l.pairFailures) return { allowed: false, retryAfterSeconds: seconds(pair.start + l.windowMs - now) };
    const from = this.addresses.get(address, now);
    if (from && from.count >= l.addressFailures) return { allowed: false, retryAfterSeconds: seconds(from.start + l.windowMs - now) };
    const forEmail = this.emails.get(email, now);
    if (forEmail && now < forEmail.nextAt) return { allowed: false, retryAfterSeconds: seconds(forEmail.nextAt - now) };

    this.pairs.add(pairKey, now);
    this.addresses.add(address, now);
    const e = this.emails.add(email, now);
    const over = e.count - l.emailFreeFailures;
    if (over >= 0) e.nextAt = now + Math.min(l.emailMaxSpacingMs, 1000 * 2 ** over);
    let done = false;
    return {
      allowed: true,
      attempt: {
        succeeded: () => {
          if (done) return;
          done = true;
          this.pairs.delete(pairKey);
          this.emails.delete(email);
          this.addresses.refund(address);
        },
        failed: () => {
          done = true;
        },
      },
    };
  }

  /** Counts a sign-up from `ip`; refused (with the seconds to wait) past the limit. */
  signup(ip: string): { allowed: true } | { allowed: false; retryAfterSeconds: number } {
    const now = this.clock.now();
    const address = addressKey(ip);
    const { limits: l } = this;
    const e = this.signups.get(address, now);
    if (e && e.count >= l.signupsPerAddress) return { allowed: false, retryAfterSeconds: seconds(e.start + l.signupWindowMs - now) };
    this.signups.add(address, now);
    return { allowed: true };
  }

  /** Entries held, all tables together (bounded by 8 × capacity). */
  get size(): number {
    return this.pairs.size + this.addresses.size + this.emails.size + this.signups.size;
  }
}
