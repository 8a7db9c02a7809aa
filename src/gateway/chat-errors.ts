// The errors a chat request ends with, from what stopped it.
import type { Refused } from '../billing/metered-request.ts';
import { ceilCents, floorCents } from '../billing/pricing.ts';
import { ApiError } from '../errors.ts';
import type { RequestLifetime } from './request-lifetime.ts';

export const shuttingDown = () => new ApiError('service_unavailable', { message: 'The server is shutting down. Retry the request.' });

/**
 * The 402 for a hold the balance (or the key's spend limit: what is left of it is then the
 * balance before) could not cover, with what the contract puts in its details and which limit it was.
 */
export function insufficientBalance(r: Refused): ApiError {
  return new ApiError('insufficient_balance', {
    details: {
      balance_before_cents: floorCents(r.availableMicros),
      cost_cents: ceilCents(r.holdMicros),
      ...(r.maxAffordableTokens !== null ? { max_affordable_tokens: r.maxAffordableTokens } : {}),
      limit_source: r.reason,
    },
  });
}

export function asApiError(err: unknown, lifetime: RequestLifetime): ApiError {
  if (lifetime.reason === 'shutdown') return shuttingDown();
  if (err instanceof ApiError) return err;
  if (lifetime.timedOut) return new ApiError('upstream_timeout');
  return new ApiError('upstream_error');
}
