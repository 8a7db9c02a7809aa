// How money, times and counts are shown.
export const dollars = (cents: number): string =>
  (cents / 100).toLocaleString('en-US', {
    style: 'currency',
    currency: 'USD',
    minimumFractionDigits: 2,
    maximumFractionDigits: Math.abs(cents) < 100 && cents !== 0 && !Number.isInteger(cents) ? 6 : 2,
  });

export const when = (ms: number | null): string =>
  ms === null ? 'Never' : new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const count = (n: number): string => n.toLocaleString('en-US');
