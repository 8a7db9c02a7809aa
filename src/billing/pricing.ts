// What a request costs, in integer micro-USD (lib/money.ts). Pure functions.
import type { ModelPrice } from '../config.ts';

export { ceilCents, centsToMicros, exactCents, floorCents, MICROS_PER_CENT } from '../lib/money.ts';

const PER_MILLION = 1_000_000;

/** Cost of a request with these token counts, rounded up to the next micro-USD. */
export function costMicros(price: ModelPrice, promptTokens: number, completionTokens: number): number {
  const tokenPart = promptTokens * price.input_per_million_micros + completionTokens * price.output_per_million_micros;
  return Math.ceil(tokenPart / PER_MILLION) + price.request_micros;
}

/** The largest max_tokens the available balance can hold, or null when output is free. */
export function maxAffordableTokens(price: ModelPrice, promptTokens: number, availableMicros: number): number | null {
  if (price.output_per_million_micros === 0) return null;
  const budget = (availableMicros - price.request_micros) * PER_MILLION - promptTokens * price.input_per_million_micros;
  return Math.max(0, Math.floor(budget / price.output_per_million_micros));
}
