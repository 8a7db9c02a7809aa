// The requests that hold money right now. A graceful shutdown waits for them to settle, so that
// stopping the server does not leave holds for the sweeper (or bills nothing it should have).
export class OpenMeters {
  private readonly open = new Set<Promise<unknown>>();

  /** Registers a settlement in progress; it is forgotten once it is done. */
  track<T>(settlement: Promise<T>): Promise<T> {
    this.open.add(settlement);
    const forget = () => this.open.delete(settlement);
    settlement.then(forget, forget);
    return settlement;
  }

  /** Resolves when nothing is open, or after `timeoutMs`; returns how many were still open. */
  async drain(timeoutMs: number): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (this.open.size && Date.now() < end) {
      await Promise.race([Promise.allSettled([...this.open]), new Promise((r) => setTimeout(r, Math.max(1, end - Date.now())).unref())]);
    }
    return this.open.size;
  }
}
