// Durations as people write them on a command line or in a request: `30d`, `24h`, `90m`, `45s`,
// or a number of seconds; `0` is no time at all.

export const DAY_MS = 86_400_000;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** A duration in milliseconds, or null when the text is not one (at most ten years). */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * (UNIT_MS[m[2] || 's'] as number);
  return ms <= 3650 * DAY_MS ? ms : null;
}
