// `last_used_at` is written in batches, not on every request: one UPDATE per key per flush keeps
// a write off the hot path while the dashboard still shows use within a few seconds.
import type { Db } from '../db/connection.ts';

export class LastUsedTracker {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly intervalMs = 2000,
  ) {}

  touch(keyId: string, at: number): void {
    this.pending.set(keyId, at);
  }

  start(): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    for (const [id, at] of batch) {
      await this.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
