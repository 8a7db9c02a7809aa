// A model request admitted under its key's rate limits (requests and tokens per minute, requests
// at once), before anything is held: the OpenAI x-ratelimit-* headers on the answer, whatever it
// is, and a 429 with Retry-After when a limit is reached. Then its worst case held (a 402 when the
// balance or the key's spend limit does not cover it); the admission is finished when the
// request's meter closes (its tokens corrected to what it used).
import type { FastifyReply } from 'fastify';
import { Meter, type MeterContext, type MeterDeps } from '../billing/metered-request.ts';
import type { ApiKeyRow } from '../db/schema.ts';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { type Admitted, hasRateLimits, type LimitName, type RateLimitedKey, rateLimitHeaders } from '../limits/rate-limiter.ts';
import { insufficientBalance } from './chat-errors.ts';

const refusal = (key: RateLimitedKey, limit: LimitName): string => {
  if (limit === 'requests') return `Rate limit reached: this API key may make ${key.rpm} requests per minute.`;
  if (limit === 'tokens') {
    return `Rate limit reached: this API key may use ${key.tpm} tokens per minute (a request counts its prompt and its output limit until it ends, then what it used).`;
  }
  return `Rate limit reached: this API key may have ${key.max_concurrency} requests in progress at once.`;
};

/**
 * Admits the request and holds its worst case (`worstTokens`: its prompt and output limit, for
 * the tokens per minute). The meter it answers with finishes the admission when it closes.
 */
export async function admitAndHold(deps: Deps, reply: FastifyReply, ctx: MeterContext, worstTokens: number): Promise<Meter> {
  // A key without rate limits takes no extra step.
  const admitted = hasRateLimits(ctx.auth.key) ? await admit(deps, reply, ctx.auth.key, worstTokens) : null;
  // Set on the caller's context rather than copied into a new one: nothing more per request
  // than the key and the metrics need (a route's options are an object made on every read).
  if (admitted) ctx.release = admitted.finish;
  let opened: Awaited<ReturnType<typeof Meter.open>>;
  try {
    if (deps.metrics) {
      ctx.route = reply.request.routeOptions.url ?? 'unknown';
      ctx.elapsedMs = () => reply.elapsedTime;
    }
    opened = await Meter.open(meterDepsOf(deps), ctx);
  } catch (err) {
    admitted?.finish(0);
    throw err;
  }
  if (!opened.ok) {
    admitted?.finish(0);
    deps.metrics?.refused(opened.reason);
    throw insufficientBalance(opened);
  }
  return opened.meter;
}

// What a meter needs of the server, made once per server rather than once per request.
const meterDeps = new WeakMap<Deps, MeterDeps>();
function meterDepsOf(deps: Deps): MeterDeps {
  let m = meterDeps.get(deps);
  if (!m) {
    m = {
      ledger: deps.ledger,
      openMeters: deps.openMeters,
      now: deps.clock.now,
      holdTtlMs: deps.config.holdTtlSeconds * 1000,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    };
    meterDeps.set(deps, m);
  }
  return m;
}

// On the reply, with the rest of the answer's headers (Node takes the raw response's own headers
// through a slower path when the answer is written); a stream's head takes them from the reply
// (chat-stream.ts), and an error answered later keeps them.
const setHeaders = (reply: FastifyReply, headers: Record<string, string>) => {
  reply.headers(headers);
};

async function admit(deps: Deps, reply: FastifyReply, key: ApiKeyRow, worstTokens: number): Promise<Admitted> {
  if (key.tpm !== null && worstTokens > key.tpm) {
    // It would never fit in a minute: waiting is no help, so it is not a 429 a client would retry.
    throw new ApiError('invalid_request', {
      param: 'max_tokens',
      message: `This request may use ${worstTokens} tokens (its prompt and its output limit), more than this API key's ${key.tpm} tokens per minute. Set a lower max_tokens.`,
    });
  }
  const admitted = await deps.limiter.admit(key, worstTokens, deps.clock.now());
  setHeaders(reply, rateLimitHeaders(key, admitted.state));
  if (!admitted.ok) {
    deps.metrics?.refused(admitted.limit);
    const seconds = Math.max(1, Math.ceil(admitted.retryAfterMs / 1000));
    throw new ApiError('rate_limited', {
      message: `${refusal(key, admitted.limit)} Retry after ${seconds} s.`,
      headers: { 'retry-after': String(seconds), 'retry-after-ms': String(Math.max(0, Math.ceil(admitted.retryAfterMs))) },
      details: { limit: admitted.limit },
    });
  }
  return admitted;
}

/** The x-ratelimit-* headers of a /v1 answer that is not a model call (the key's counters as they are). */
export async function showRateLimits(deps: Deps, reply: FastifyReply, key: ApiKeyRow): Promise<void> {
  setHeaders(reply, rateLimitHeaders(key, await deps.limiter.peek(key, deps.clock.now())));
}
