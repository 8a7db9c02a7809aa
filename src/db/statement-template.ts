// Statements written once in Kysely and compiled once, with named parameters, for runners that
// execute the compiled SQL themselves (the ledger's: prepared better-sqlite3 statements, or a
// transaction's connection). A parameter is a marker object in the query; compiling the query
// gives the SQL text and, in order, the markers, which are bound by name at every run.
import type { CompiledQuery } from 'kysely';

const PARAM = Symbol('statement parameter');
type Marker = { readonly [PARAM]: string };

/** A named parameter in a statement template (bound by name each time the statement runs). */
export const param = <T>(name: string): T => ({ [PARAM]: name }) as unknown as T;

/** Every column as a parameter of its own name: the values of an insert of a whole row. */
export const row = <C extends string>(columns: readonly C[]) => Object.fromEntries(columns.map((c) => [c, param(c)])) as Record<C, never>;

/** A compiled statement and how to bind its parameters: by name from the input, or a constant. */
export type Template = { sql: string; bind: (input: Readonly<Record<string, unknown>>) => unknown[] };

export function template(query: { compile(): CompiledQuery }): Template {
  const { sql, parameters } = query.compile();
  const slots = parameters.map((v) => {
    const name = (v as Marker | null)?.[PARAM];
    return typeof name === 'string' ? { name } : { value: v };
  });
  return { sql, bind: (input) => slots.map((s) => ('name' in s ? (input[s.name] ?? null) : s.value)) };
}
