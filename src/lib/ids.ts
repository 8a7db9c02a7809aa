// Prefixed, time-ordered ids (`acct_…`, `key_…`, `req_…`): the prefix says what an id names, the
// leading time part makes ids sort by creation, the random part makes them unguessable.
import { encodeBase62, randomBase62 } from './base62.ts';

export type IdPrefix = 'acct' | 'key' | 'req' | 'hold' | 'le' | 'admkey';

export function newId(prefix: IdPrefix, now = Date.now()): string {
  return `${prefix}_${encodeBase62(BigInt(now), 8)}${randomBase62(16)}`;
}
