// Time as a dependency, so tests can move it (hold expiry) without sleeping.
export type Clock = { now(): number };
export const systemClock: Clock = { now: () => Date.now() };

/**
 * Whether `now` is less than `ms` after `since`, and not before it (a clock set back counts as
 * out of the window: what was timed by it is not trusted for longer).
 */
export const within = (since: number, now: number, ms: number): boolean => now >= since && now - since < ms;

/** Epoch milliseconds (how we store time) as the Unix seconds OpenAI-shaped answers carry. */
export const unixSeconds = (ms: number): number => Math.floor(ms / 1000);
