// Time as a dependency, so tests can move it (hold expiry) without sleeping.
export type Clock = { now(): number };
export const systemClock: Clock = { now: () => Date.now() };

/** Epoch milliseconds (how we store time) as the Unix seconds OpenAI-shaped answers carry. */
export const unixSeconds = (ms: number): number => Math.floor(ms / 1000);
