// The key look-ups of a server, cached in the process: a key read once is answered from memory
// until keys may have changed. Every change of a key made through key-store (revoked, rotated,
// its limits or expiry) empties this process's caches at once; changes made by other processes
// are heard of through the database (key-changes.ts). A TTL of a second is the safety net either
// way (a notification lost in a broken connection, a write that went round key-store), so the
// contract's "401 on every instance within 1 second" holds whatever happens, and a cached row's
// last use is at most a second old.
import type { ApiKeyRow } from '../db/schema.ts';
import { within } from '../lib/clock.ts';
import type { WatchKeyChanges } from './key-changes.ts';
import type { KeyFinder } from './key-lookup.ts';

/** How long a cached key is trusted without hearing of a change. */
export const KEY_CACHE_TTL_MS = 1000;
/** The most keys kept; past it the oldest entries go first. */
const MAX_ENTRIES = 50_000;

// The caches of this process: a change made here (the dashboard, the management API, the CLI's
// own process) empties them at once, before anything is announced.
const caches = new Set<() => void>();

/** Forgets every key this process cached (called by key-store after it changes a key). */
export function forgetCachedKeys(): void {
  for (const clear of caches) clear();
}

export type KeyCache = { find: KeyFinder; readonly listening: boolean; close(): Promise<void> };

export function cachedKeyFinder(find: KeyFinder, opts: { watch: WatchKeyChanges; now: () => number }): KeyCache {
  const entries = new Map<string, { row: ApiKeyRow; at: number }>();
  // Counts the clearings: a row read before one is not cached after it (a look-up in flight
  // while the key was revoked would otherwise put the revoked key's old row back).
  let generation = 0;
  const clear = () => {
    generation++;
    entries.clear();
  };
  caches.add(clear);
  const changes = opts.watch(clear);

  return {
    async find(hash) {
      const now = opts.now();
      changes.check?.(now);
      if (!changes.watching) return find(hash);
      const hit = entries.get(hash);
      if (hit && within(hit.at, now, KEY_CACHE_TTL_MS)) return hit.row;
      const before = generation;
      const row = await find(hash);
      if (row && changes.watching && generation === before) {
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
        entries.set(hash, { row, at: now });
      }
      return row;
    },
    get listening() {
      return changes.watching;
    },
    async close() {
      caches.delete(clear);
      clear();
      await changes.close();
    },
  };
}
