// Slows down password guessing: after a few failures for the same email or from the same
// address every further attempt waits longer, and past a limit attempts on that email are
// refused for a while. Addresses are only slowed, never blocked: many users can share one
// address (an office, a proxy), and blocking it would lock them all out.
// In-process state: a guesser spread over several instances gets each instance's allowance.

const FREE_FAILURES = 3;
const BLOCK_AFTER = 10;
const WINDOW_MS = 15 * 60 * 1000;
const MAX_DELAY_MS = 4000;

type Entry = { failures: number; first: number };

export class SigninThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number) {}

  private get(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.first > WINDOW_MS) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** How long to wait before answering (ms), or `blocked` with the seconds until it lifts. */
  check(email: string, address: string): { delayMs: number } | { blockedForSeconds: number } {
    const byEmail = this.get(email);
    if (byEmail && byEmail.failures >= BLOCK_AFTER) {
      return { blockedForSeconds: Math.ceil((byEmail.first + WINDOW_MS - this.now()) / 1000) };
    }
    const failures = Math.max(byEmail?.failures ?? 0, this.get(address)?.failures ?? 0);
    const over = failures - FREE_FAILURES;
    return { delayMs: over < 0 ? 0 : Math.min(MAX_DELAY_MS, 250 * 2 ** over) };
  }

  fail(keys: string[]): void {
    for (const k of keys) {
      const e = this.get(k);
      if (e) e.failures++;
      else this.entries.set(k, { failures: 1, first: this.now() });
    }
    if (this.entries.size > 100_000) this.entries.clear();
  }

  succeed(keys: string[]): void {
    for (const k of keys) this.entries.delete(k);
  }
}
