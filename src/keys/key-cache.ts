// The key look-ups of a PostgreSQL server, cached in the process: a key read once is answered
// from memory until it changes. Every change of a key (revoked, rotated, its limits or expiry;
// whichever process made it: the CLI, the dashboard, the management API, another instance) is
// announced on the channel `bizora_keys` (key-store.ts), and every instance LISTENs: the change
// reaches each within milliseconds. A TTL of a second is the safety net (a notification lost in
// a broken connection), and while the listening connection is down the cache is not used at all,
// so the contract's "401 on every instance within 1 second" holds either way.
import pg from 'pg';
import type { ApiKeyRow } from '../db/schema.ts';
import type { KeyFinder } from './key-lookup.ts';

export const KEY_CHANGES_CHANNEL = 'bizora_keys';
/** How long a cached key is trusted without a notification. */
export const KEY_CACHE_TTL_MS = 1000;
/** The most keys kept; past it the oldest entries go first. */
const MAX_ENTRIES = 50_000;

// The caches of this process: a change made here (the dashboard, the management API) empties them
// at once, before its NOTIFY comes back.
const caches = new Set<Map<string, unknown>>();

/** Forgets every key this process cached (called by key-store after it changes a key). */
export function forgetCachedKeys(): void {
  for (const c of caches) c.clear();
}

export type KeyCache = { find: KeyFinder; clear(): void; readonly listening: boolean; close(): Promise<void> };

export function cachedKeyFinder(find: KeyFinder, opts: { databaseUrl: string; now: () => number }): KeyCache {
  const entries = new Map<string, { row: ApiKeyRow; until: number }>();
  caches.add(entries);
  let listening = false;
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let backoff = 100;

  async function listen(): Promise<void> {
    const c = new pg.Client({ connectionString: opts.databaseUrl, connectionTimeoutMillis: 2000, keepAlive: true });
    client = c;
    const down = () => {
      if (client !== c) return;
      listening = false;
      entries.clear();
      client = undefined;
      c.end().catch(() => {});
      if (!closed) {
        retry = setTimeout(() => void listen(), backoff);
        retry.unref();
        backoff = Math.min(backoff * 2, 5000);
      }
    };
    c.on('error', () => down());
    c.on('end', () => down());
    c.on('notification', () => entries.clear());
    try {
      await c.connect();
      await c.query(`LISTEN ${KEY_CHANGES_CHANNEL}`);
      if (client !== c) return;
      // What was cached before the connection was up may have missed a change.
      entries.clear();
      listening = true;
      backoff = 100;
    } catch {
      // Not listening: keys are read every request until the retry connects.
      down();
    }
  }
  void listen();

  return {
    async find(hash) {
      if (!listening) return find(hash);
      const now = opts.now();
      const hit = entries.get(hash);
      if (hit && hit.until > now) return hit.row;
      const row = await find(hash);
      if (row && listening) {
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
        entries.set(hash, { row, until: now + KEY_CACHE_TTL_MS });
      }
      return row;
    },
    clear: () => entries.clear(),
    get listening() {
      return listening;
    },
    async close() {
      closed = true;
      caches.delete(entries);
      clearTimeout(retry);
      listening = false;
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
