// Rate limits counted in this process: right for one instance; with several, each counts its own
// (the README says so), and BIZORA_REDIS_URL shares them. Bounded: one small entry per key with
// rate limits that was used recently; entries of past windows with nothing in flight are dropped.
import {
  type Admitted,
  type RateLimitedKey,
  type RateLimiter,
  type RateState,
  type Refused,
  refusingLimit,
  retryAfterMs,
  windowOf,
} from './rate-limiter.ts';

type Counters = { window: number; requests: number; tokens: number; inFlight: number };

/** Past this many keys, entries of past windows with nothing in flight are swept. */
const SWEEP_AT = 10_000;

export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counters>();
  /** The window of the last sweep: at most one per window, however many keys arrive. */
  private sweptIn = -1;

  private current(keyId: string, now: number): { c: Counters; endsAt: number } {
    const { index, endsAt } = windowOf(now);
    let c = this.counters.get(keyId);
    if (!c) {
      if (this.counters.size >= SWEEP_AT && this.sweptIn !== index) this.sweep(index);
      c = { window: index, requests: 0, tokens: 0, inFlight: 0 };
      this.counters.set(keyId, c);
    } else if (c.window !== index) {
      c.window = index;
      c.requests = 0;
      c.tokens = 0;
    }
    return { c, endsAt };
  }

  private sweep(index: number): void {
    this.sweptIn = index;
    for (const [id, c] of this.counters) if (c.window !== index && c.inFlight === 0) this.counters.delete(id);
  }

  async admit(key: RateLimitedKey, tokens: number, now: number): Promise<Admitted | Refused> {
    const { c, endsAt } = this.current(key.id, now);
    const limit = refusingLimit(key, stateOf(c, endsAt - now), tokens);
    if (limit) {
      return {
        ok: false,
        limit,
        retryAfterMs: retryAfterMs(limit, endsAt, now),
        state: stateOf(c, endsAt - now),
      };
    }
    c.requests++;
    c.tokens += tokens;
    c.inFlight++;
    const admittedIn = c.window;
    let finished = false;
    return {
      ok: true,
      state: stateOf(c, endsAt - now),
      finish: (used) => {
        if (finished) return;
        finished = true;
        c.inFlight--;
        // Corrected within the window it was counted in; a new window started from nothing.
        if (c.window === admittedIn) c.tokens = Math.max(0, c.tokens - tokens + used);
      },
    };
  }

  async peek(key: RateLimitedKey, now: number): Promise<RateState> {
    const { c, endsAt } = this.current(key.id, now);
    return stateOf(c, endsAt - now);
  }
}

const stateOf = (c: Counters, resetMs: number): RateState => ({ requests: c.requests, tokens: c.tokens, inFlight: c.inFlight, resetMs });
