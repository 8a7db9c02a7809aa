// Dashboard sessions. The cookie carries a random token; the table keeps only its SHA-256, so a
// leaked database cannot be replayed as sessions. Expired ones are removed by SessionSweeper.
import { createHash } from 'node:crypto';
import type { Db } from '../db/connection.ts';
import { randomBase62 } from '../lib/base62.ts';
import type { Clock } from '../lib/clock.ts';
import type { PublicAccount } from './account-store.ts';

export const SESSION_COOKIE = 'bizora_session';
const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export async function createSession(db: Db, accountId: string, now: number, ttlMs: number): Promise<string> {
  const token = randomBase62(43);
  await db
    .insertInto('sessions')
    .values({ id: hash(token), account_id: accountId, created_at: now, expires_at: now + ttlMs })
    .execute();
  return token;
}

export function findSessionAccount(db: Db, token: string, now: number): Promise<PublicAccount | undefined> {
  return db
    .selectFrom('sessions')
    .innerJoin('accounts', 'accounts.id', 'sessions.account_id')
    .select([
      'accounts.id',
      'accounts.email',
      'accounts.name',
      'accounts.role',
      'accounts.balance_micros',
      'accounts.held_micros',
      'accounts.created_at',
    ])
    .where('sessions.id', '=', hash(token))
    .where('sessions.expires_at', '>', now)
    .executeTakeFirst();
}

export async function deleteSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('id', '=', hash(token)).execute();
}

/** Deletes sessions that expired at or before `now`, at most `batch` of them; how many it deleted. */
export async function deleteExpiredSessions(db: Db, now: number, batch = 1000): Promise<number> {
  const due = db.selectFrom('sessions').select('id').where('expires_at', '<=', now).limit(batch);
  const r = await db.deleteFrom('sessions').where('id', 'in', due).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/**
 * Removes expired sessions now and then, so the table holds only live sign-ins. An expired
 * session is refused whether or not it was removed yet (findSessionAccount checks the time);
 * this only keeps the table from growing forever. Start it with the process, stop it on shutdown.
 */
export class SessionSweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly intervalMs = 60 * 60 * 1000,
  ) {}

  /** Deletes every expired session, in batches; returns how many. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await deleteExpiredSessions(this.db, this.clock.now());
      total += n;
      if (n === 0) return total;
    }
  }

  start(onError: (err: unknown) => void = () => {}): void {
    if (this.timer) return;
    void this.sweep().catch(onError);
    this.timer = setInterval(() => void this.sweep().catch(onError), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
