// How a server hears that keys may have changed in another process (key-cache.ts empties its
// cache then):
// - SQLite: `PRAGMA data_version` moves when another connection has committed anything (the CLI,
//   another process on the file). It is read before a look-up at most every SQLITE_CHECK_MS (each
//   read is a read transaction with its file locks, dearer than the SELECT it saves when done per
//   request), so another process's revocation is seen within that.
// - PostgreSQL: key-store announces every change on the channel `bizora_keys` and every instance
//   LISTENs on a connection of its own: the change reaches each within milliseconds. While that
//   connection is down nothing is cached.
import type SQLite from 'better-sqlite3';
import pg from 'pg';
import { within } from '../lib/clock.ts';

export const KEY_CHANGES_CHANNEL = 'bizora_keys';
/** How often, at most, a SQLite server looks for other processes' commits. */
export const SQLITE_CHECK_MS = 20;

/**
 * How a cache hears that keys may have changed in another process: made with the `changed` to
 * call whenever they may have (a notification, the watch lost or regained, a commit seen).
 */
export interface KeyChanges {
  /** Whether changes are seen now: while not, nothing is cached. */
  readonly watching: boolean;
  /** Looks for changes before a look-up at `now`, where they are not pushed (SQLite). */
  check?(now: number): void;
  close(): Promise<void>;
}
export type WatchKeyChanges = (changed: () => void) => KeyChanges;

/** SQLite: another connection's commit moves this connection's data_version. */
export const sqliteKeyChanges =
  (sqlite: SQLite.Database): WatchKeyChanges =>
  (changed) => {
    const version = sqlite.prepare('PRAGMA data_version').pluck();
    let seen = version.get();
    let checkedAt = Number.NEGATIVE_INFINITY;
    return {
      watching: true,
      check(now) {
        // A clock set back (a test's) checks at once.
        if (within(checkedAt, now, SQLITE_CHECK_MS)) return;
        checkedAt = now;
        const current = version.get();
        if (current !== seen) {
          seen = current;
          changed();
        }
      },
      close: async () => {},
    };
  };

/** PostgreSQL: LISTEN on a connection of its own, reconnecting with a backoff when it drops. */
export const postgresKeyChanges =
  (databaseUrl: string): WatchKeyChanges =>
  (changed) => {
    let watching = false;
    let closed = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    let backoff = 100;

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
      async close() {
        closed = true;
        clearTimeout(retry);
        watching = false;
        const c = client;
        client = undefined;
        await c?.end().catch(() => {});
      },
    };
  };
