// A key's limits as /v1/key shows them, with what is left: of its rate limits in the current
// minute (in this process, or shared through Redis), of its spend limit in the current period.
import { spendUsed } from '../billing/ledger.ts';
import { floorCents } from '../billing/pricing.ts';
import type { ApiKeyRow } from '../db/schema.ts';
import type { Deps } from '../deps.ts';
import { limitsOf, spendWindow } from '../keys/key-limits.ts';
import { hasRateLimits } from '../limits/rate-limiter.ts';

export async function keyLimitsView(deps: Deps, key: ApiKeyRow) {
  const limits = limitsOf(key);
  const now = deps.clock.now();
  let rate_limit = null;
  if (hasRateLimits(key)) {
    const state = await deps.limiter.peek(key, now);
    rate_limit = {
      requests_per_minute: key.rpm,
      tokens_per_minute: key.tpm,
      max_concurrency: key.max_concurrency,
      remaining_requests: key.rpm === null ? null : Math.max(0, key.rpm - state.requests),
      remaining_tokens: key.tpm === null ? null : Math.max(0, key.tpm - state.tokens),
      in_flight: state.inFlight,
      reset_seconds: Math.ceil(state.resetMs / 100) / 10,
    };
  }
  let spend_remaining_cents = null;
  if (key.spend_limit_micros !== null) {
    const spend = await deps.db.selectFrom('key_spend').selectAll().where('key_id', '=', key.id).executeTakeFirst();
    const used = spendUsed(spend, spendWindow(key.spend_period, now));
    spend_remaining_cents = floorCents(Math.max(0, key.spend_limit_micros - used));
  }
  return {
    rate_limit,
    spend_limit_cents: limits.spend_limit_cents,
    spend_period: limits.spend_period,
    spend_remaining_cents,
    models: limits.models,
  };
}
