// Time as a dependency, so tests can move it (hold expiry) without sleeping.
export type Clock = { now(): number };
export const systemClock: Clock = { now: () => Date.now() };
