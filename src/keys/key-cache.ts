// The key look-ups of a server, cached in the process: a key read once is answered from memory
// until keys may have changed. Every change of a key made through key-store (revoked, rotated,
// its limits or expiry) empties this process's caches at once. Changes made by other processes
// are seen by watching the database:
// - SQLite: `PRAGMA data_version` moves when another connection has committed anything (the CLI,
//   another process on the file): the cache is emptied. It is read before a look-up at most every
//   SQLITE_CHECK_MS (each read is a read transaction with its file locks, dearer than the SELECT it
//   saves when done per request), so another process's revocation is seen within that.
// - PostgreSQL: key-store announces every change on the channel `bizora_keys` and every instance
//   LISTENs: the change reaches each within milliseconds. While the listening connection is down
//   the cache is not used at all.
// A TTL of a second is the safety net either way (a notification lost in a broken connection, a
// write that went round key-store), so the contract's "401 on every instance within 1 second"
// holds whatever happens, and a cached row's last use is at most a second old.
import type SQLite from 'better-sqlite3';
import pg from 'pg';
import type { ApiKeyRow } from '../db/schema.ts';
import type { KeyFinder } from './key-lookup.ts';

export const KEY_CHANGES_CHANNEL = 'bizora_keys';
/** How long a cached key is trusted without hearing of a change. */
export const KEY_CACHE_TTL_MS = 1000;
/** How often, at most, a SQLite server looks for other processes' commits. */
export const SQLITE_CHECK_MS = 20;
/** The most keys kept; past it the oldest entries go first. */
const MAX_ENTRIES = 50_000;

/** How a cache hears that keys may have changed in another process. */
export interface KeyChanges {
  /** Whether changes are seen now: while not, nothing is cached. */
  readonly watching: boolean;
  /** `changed` is called whenever keys may have changed (a notification, the watch lost or regained). */
  subscribe(changed: () => void): void;
  /** Looks for changes before a look-up at `now`, where they are not pushed (SQLite); calls `changed` if there were. */
  check?(now: number): void;
  close(): Promise<void>;
}

// The caches of this process: a change made here (the dashboard, the management API, the CLI's
// own process) empties them at once, before anything is announced.
const caches = new Set<() => void>();

/** Forgets every key this process cached (called by key-store after it changes a key). */
export function forgetCachedKeys(): void {
  for (const clear of caches) clear();
}

export type KeyCache = { find: KeyFinder; clear(): void; readonly listening: boolean; close(): Promise<void> };

export function cachedKeyFinder(find: KeyFinder, opts: { changes: KeyChanges; now: () => number }): KeyCache {
  const { changes } = opts;
  const entries = new Map<string, { row: ApiKeyRow; until: number }>();
  // Counts the clearings: a row read before one is not cached after it (a look-up in flight
  // while the key was revoked would otherwise put the revoked key's old row back).
  let generation = 0;
  const clear = () => {
    generation++;
    entries.clear();
  };
  caches.add(clear);
  changes.subscribe(clear);

  return {
    async find(hash) {
      const now = opts.now();
      changes.check?.(now);
      if (!changes.watching) return find(hash);
      const hit = entries.get(hash);
      // Not past its TTL, nor from a time the clock has since been set back past.
      if (hit && hit.until > now && hit.until - KEY_CACHE_TTL_MS <= now) return hit.row;
      const before = generation;
      const row = await find(hash);
      if (row && changes.watching && generation === before) {
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
        entries.set(hash, { row, until: now + KEY_CACHE_TTL_MS });
      }
      return row;
    },
    clear,
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

/** SQLite: another connection's commit moves this connection's data_version. */
export function sqliteKeyChanges(sqlite: SQLite.Database): KeyChanges {
  const version = sqlite.prepare('PRAGMA data_version').pluck();
  let seen = version.get();
  let checkedAt = Number.NEGATIVE_INFINITY;
  let changed = () => {};
  return {
    watching: true,
    subscribe(cb) {
      changed = cb;
    },
    check(now) {
      // A clock set back (a test's) checks at once.
      if (now >= checkedAt && now - checkedAt < SQLITE_CHECK_MS) return;
      checkedAt = now;
      const current = version.get();
      if (current !== seen) {
        seen = current;
        changed();
      }
    },
    close: async () => {},
  };
}

/** PostgreSQL: LISTEN on a connection of its own, reconnecting with a backoff when it drops. */
export function postgresKeyChanges(databaseUrl: string): KeyChanges {
  let watching = false;
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let backoff = 100;
  let changed = () => {};

  async function listen(): Promise<void> {
    const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000, keepAlive: true });
    client = c;
    const down = () => {
      if (client !== c) return;
      watching = false;
      changed();
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
    c.on('notification', () => changed());
    try {
      await c.connect();
      await c.query(`LISTEN ${KEY_CHANGES_CHANNEL}`);
      if (client !== c) return;
      // What was cached before the connection was up may have missed a change.
      changed();
      watching = true;
      backoff = 100;
    } catch {
      // Not listening: keys are read every request until the retry connects.
      down();
    }
  }
  void listen();

  return {
    get watching() {
      return watching;
    },
    subscribe(cb) {
      changed = cb;
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      watching = false;
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
