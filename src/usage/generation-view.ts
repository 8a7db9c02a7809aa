// The public shape of one usage record: what /v1/generation and the dashboard both return.

import type { UsageRecord } from '../db/schema.ts';
import { unixSeconds } from '../lib/clock.ts';
import { exactCents } from '../lib/money.ts';
import { completionIdFor } from './usage-store.ts';

export function generationView(u: UsageRecord) {
  return {
    object: 'generation' as const,
    id: completionIdFor(u.id),
    request_id: u.id,
    created: unixSeconds(u.created_at),
    model: u.model,
    backend: u.backend,
    mode: u.mode,
    key_id: u.key_id,
    stream: u.stream === 1,
    status: u.status,
    http_status: u.http_status,
    finish_reason: u.finish_reason,
    error_code: u.error_code,
    latency_ms: u.latency_ms,
    usage: {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: u.prompt_tokens + u.completion_tokens,
      cost_cents: exactCents(u.cost_micros),
      cost_micros: u.cost_micros,
      held_cents: exactCents(u.hold_micros),
    },
  };
}
