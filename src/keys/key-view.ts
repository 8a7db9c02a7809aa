// A key as the dashboard and the management API show it: its status, limits, and what needs the
// owner's attention (it expires within a week, its former secret still works after a rotation,
// or nobody has used it for 30 days: revoke it?). Never its secret.
import { DAY_MS } from '../lib/durations.ts';
import { limitsOf } from './key-limits.ts';
import type { PublicKey } from './key-store.ts';

export const EXPIRING_WITHIN_MS = 7 * DAY_MS;
export const UNUSED_AFTER_MS = 30 * DAY_MS;

type Notice = 'expiring' | 'rotating' | 'unused';

export function keyStatus(k: Pick<PublicKey, 'revoked_at' | 'expires_at'>, now: number): 'active' | 'revoked' | 'expired' {
  if (k.revoked_at !== null) return 'revoked';
  return k.expires_at !== null && k.expires_at <= now ? 'expired' : 'active';
}

export function keyView(k: PublicKey, now: number) {
  const status = keyStatus(k, now);
  const notices: Notice[] = [];
  if (status === 'active') {
    if (k.expires_at !== null && k.expires_at - now <= EXPIRING_WITHIN_MS) notices.push('expiring');
    if (k.previous_valid_until !== null && k.previous_valid_until > now) notices.push('rotating');
    if (now - (k.last_used_at ?? k.created_at) >= UNUSED_AFTER_MS) notices.push('unused');
  }
  return {
    id: k.id,
    name: k.name,
    preview: k.preview,
    mode: k.mode,
    created_at: k.created_at,
    last_used_at: k.last_used_at,
    revoked_at: k.revoked_at,
    status,
    expires_at: k.expires_at,
    previous_valid_until: k.previous_valid_until !== null && k.previous_valid_until > now ? k.previous_valid_until : null,
    limits: limitsOf(k),
    notices,
  };
}
