// Statements written once in Kysely and compiled once, with named parameters, for runners that
// execute the compiled SQL themselves (the ledger's: prepared better-sqlite3 statements, or a
// PostgreSQL connection). A parameter is a marker object in the query; compiling the query gives
// the SQL text and, in order, the markers, which are bound by name at every run. A name may be a
// path ('entry.id'), so that one statement made of several can take each part's input whole.
import { type CompiledQuery, type RawBuilder, type SqlBool, sql } from 'kysely';

const PARAM = Symbol('statement parameter');
type Marker = { readonly [PARAM]: string };

/** A named parameter in a statement template (bound by name each time the statement runs). */
export const param = <T>(name: string): T => ({ [PARAM]: name }) as unknown as T;

/** Every column as a parameter of its own name (under `prefix.` if given): the values of an insert of a whole row. */
export const row = <C extends string>(columns: readonly C[], prefix?: string) =>
  Object.fromEntries(columns.map((c) => [c, param(prefix ? `${prefix}.${c}` : c)])) as Record<C, never>;

/** The same parameters as a select list, for an INSERT … SELECT (PostgreSQL types them from the target columns). */
export const rowSelection = <C extends string>(columns: readonly C[], prefix?: string) =>
  columns.map((c) => (sql`${param(prefix ? `${prefix}.${c}` : c)}` as RawBuilder<unknown>).as(c));

/** A compiled statement and how to bind its parameters: by name from the input, or a constant. */
export type Template = { sql: string; bind: (input: Readonly<Record<string, unknown>>) => unknown[] };

type Slot = { path: readonly string[] } | { value: unknown };

const lookUp = (input: Readonly<Record<string, unknown>>, path: readonly string[]): unknown => {
  let v: unknown = input;
  for (const key of path) v = (v as Record<string, unknown> | null | undefined)?.[key];
  return v ?? null;
};

export function template(query: { compile(): CompiledQuery }): Template {
  const { sql, parameters } = query.compile();
  const slots: Slot[] = parameters.map((v) => {
    const name = (v as Marker | null)?.[PARAM];
    return typeof name === 'string' ? { path: name.split('.') } : { value: v };
  });
  return { sql, bind: (input) => slots.map((s) => ('path' in s ? lookUp(input, s.path) : s.value)) };
}

/** Whether the statement's common table expression `name` has a row: how a part of a fused statement runs only if the one before it wrote. */
export const hasRow = (name: string) => sql<SqlBool>`exists (select 1 from ${sql.table(name)})`;
