// Releases holds whose request never settled (the process crashed, or the request hung past
// its deadline). Holds live longer than any request may run (checked in config.ts), so a
// request that is still running never loses its hold to the sweeper.
import type { Db } from '../db/connection.ts';
import type { Clock } from '../lib/clock.ts';
import { expireHolds } from './ledger.ts';
import type { LedgerExecutor } from './ledger-executor.ts';

export class HoldSweeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly ledger: LedgerExecutor,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Sweeps until nothing is due; returns how many holds were released. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await expireHolds(this.db, this.ledger, this.clock.now());
      total += n;
      if (n === 0) return total;
    }
  }

  start(onError?: (err: unknown) => void): void {
    const report = onError ?? this.onError;
    // One sweep at a time: one that is still releasing a crash's worth of holds, or waiting out
    // a database deadline, is not joined by a second that selects the same holds.
    let sweeping = false;
    const tick = () => {
      if (sweeping) return;
      sweeping = true;
      this.sweep()
        .catch(report)
        .finally(() => {
          sweeping = false;
        });
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
