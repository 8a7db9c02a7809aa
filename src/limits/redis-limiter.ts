// Rate limits shared by every instance through Redis (BIZORA_REDIS_URL): the same fixed
// one-minute windows as in process, counted by two Lua scripts of ours, each one round trip and
// atomic in Redis. Per key and window a hash of requests and tokens (expiring after two windows);
// per key a sorted set of the requests in progress, each scored by when it stops counting (so the
// requests of an instance that died are let go after the longest a request can live). Windows
// come from the caller's clock, so instances need their clocks in step (NTP).
// When Redis does not answer within its deadline, BIZORA_LIMITS_ON_REDIS_FAILURE says what
// happens: `open` admits the request (limits unchecked, said in the log), `closed` refuses it (503).
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ApiError } from '../errors.ts';
import {
  type Admitted,
  type RateLimitedKey,
  type RateLimiter,
  type RateState,
  type Refused,
  retryAfterMs,
  WINDOW_MS,
  windowOf,
} from './rate-limiter.ts';

// KEYS: window hash, in-progress set. ARGV: rpm, tpm, max concurrency (-1: none), tokens, now,
// member, member's expiry, keys' TTL (ms). Answers {admitted, refusing limit (1 requests, 2 tokens,
// 3 concurrency), requests, tokens, in progress}.
const ADMIT = `
local rpm, tpm, maxc, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local c = 0
if maxc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
  c = redis.call('ZCARD', KEYS[2])
end
if rpm >= 0 and r + 1 > rpm then return {0, 1, r, t, c} end
if tpm >= 0 and t + tokens > tpm then return {0, 2, r, t, c} end
if maxc >= 0 and c + 1 > maxc then return {0, 3, r, t, c} end
r = redis.call('HINCRBY', KEYS[1], 'r', 1)
t = redis.call('HINCRBY', KEYS[1], 't', tokens)
redis.call('PEXPIRE', KEYS[1], ARGV[8])
if maxc >= 0 then
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
  c = c + 1
end
return {1, 0, r, t, c}
`;

// KEYS: the window hash the request was counted in, the in-progress set. ARGV: token correction,
// member. The window's tokens are corrected if it still exists (never below 0).
const FINISH = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local t = redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
  if t < 0 then redis.call('HSET', KEYS[1], 't', 0) end
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`;

const LIMITS = ['requests', 'tokens', 'concurrency'] as const;

type Scripted = Redis & {
  bizoraAdmit(window: string, inProgress: string, ...args: (string | number)[]): Promise<number[]>;
  bizoraFinish(window: string, inProgress: string, delta: number, member: string): Promise<number>;
};

export type RedisLimiterOptions = {
  url: string;
  onFailure: 'open' | 'closed';
  /** The longest a request lives (its in-progress entry is let go after it). */
  requestLifetimeMs: number;
  /** How long one Redis command may take before it counts as a failure. */
  commandTimeoutMs?: number;
};

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Scripted;
  private seq = 0;
  private readonly instance = Math.random().toString(36).slice(2, 10);
  private lastWarned = 0;
  private log: Pick<Logger, 'warn'> = { warn: () => {} };

  constructor(private readonly opts: RedisLimiterOptions) {
    const redis = new Redis(opts.url, {
      // Fail fast rather than queue: a request never waits on Redis longer than its deadline.
      commandTimeout: opts.commandTimeoutMs ?? 250,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      lazyConnect: false,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    redis.on('error', () => {}); // reported per command, by the failure policy
    redis.defineCommand('bizoraAdmit', { numberOfKeys: 2, lua: ADMIT });
    redis.defineCommand('bizoraFinish', { numberOfKeys: 2, lua: FINISH });
    this.redis = redis as Scripted;
  }

  setLogger(log: Pick<Logger, 'warn'>): void {
    this.log = log;
  }

  private keys(keyId: string, window: number) {
    return { window: `bizora:rl:${keyId}:${window}`, inProgress: `bizora:cc:${keyId}` };
  }

  /** Redis did not answer: the request is admitted unchecked, or refused, as configured. */
  private failed(err: unknown): Admitted {
    const now = Date.now();
    if (now - this.lastWarned > 10_000) {
      this.lastWarned = now;
      this.log.warn({ err, onFailure: this.opts.onFailure }, 'Redis did not answer: keys’ rate limits are not checked');
    }
    if (this.opts.onFailure === 'closed') {
      throw new ApiError('service_unavailable', {
        message: 'The rate limits cannot be checked right now. Retry the request shortly.',
        headers: { 'retry-after': '1' },
      });
    }
    return { ok: true, state: { requests: 0, tokens: 0, inFlight: 0, resetMs: WINDOW_MS }, finish: () => {} };
  }

  async admit(key: RateLimitedKey, tokens: number, now: number): Promise<Admitted | Refused> {
    const { index, endsAt } = windowOf(now);
    const k = this.keys(key.id, index);
    const member = `${this.instance}:${++this.seq}`;
    let answer: number[];
    try {
      answer = await this.redis.bizoraAdmit(
        k.window,
        k.inProgress,
        key.rpm ?? -1,
        key.tpm ?? -1,
        key.max_concurrency ?? -1,
        tokens,
        now,
        member,
        now + this.opts.requestLifetimeMs,
        Math.max(2 * WINDOW_MS, this.opts.requestLifetimeMs),
      );
    } catch (err) {
      return this.failed(err);
    }
    const [admitted, limit, requests, counted, inFlight] = answer.map(Number) as [number, number, number, number, number];
    const state: RateState = { requests, tokens: counted, inFlight, resetMs: endsAt - now };
    if (!admitted) {
      const name = LIMITS[limit - 1] ?? 'requests';
      return { ok: false, limit: name, retryAfterMs: retryAfterMs(name, endsAt, now), state };
    }
    let finished = false;
    return {
      ok: true,
      state,
      finish: (used) => {
        if (finished) return;
        finished = true;
        // Not awaited: the answer is sent; a failure leaves the entry to its expiry.
        this.redis.bizoraFinish(k.window, k.inProgress, used - tokens, member).catch(() => {});
      },
    };
  }

  async peek(key: RateLimitedKey, now: number): Promise<RateState> {
    const { index, endsAt } = windowOf(now);
    const k = this.keys(key.id, index);
    try {
      const [[, counts], [, inFlight]] = (await this.redis.multi().hmget(k.window, 'r', 't').zcount(k.inProgress, now, '+inf').exec()) as [
        [unknown, (string | null)[]],
        [unknown, number],
      ];
      return { requests: Number(counts[0] ?? 0), tokens: Number(counts[1] ?? 0), inFlight: Number(inFlight), resetMs: endsAt - now };
    } catch {
      return { requests: 0, tokens: 0, inFlight: 0, resetMs: endsAt - now };
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
