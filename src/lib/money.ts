// Money units. Every amount is an integer number of micro-USD (1 cent = 10,000 micro-USD);
// cents are for showing and for what people type.
export const MICROS_PER_CENT = 10_000;

export const floorCents = (micros: number): number => Math.floor(micros / MICROS_PER_CENT);
export const ceilCents = (micros: number): number => Math.ceil(micros / MICROS_PER_CENT);
/** Exact cents as a decimal (4 places), for usage.cost_cents where a request costs a fraction of a cent. */
export const exactCents = (micros: number): number => micros / MICROS_PER_CENT;
export const centsToMicros = (cents: number): number => cents * MICROS_PER_CENT;
