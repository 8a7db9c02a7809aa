// node-postgres, loaded the first time something talks to PostgreSQL: a process on SQLite (the
// default server, every CLI command there) never loads it. Loading it cost a CLI command a fifth
// of its start-up (it also pulls in Node's own fetch machinery).
import { createRequire } from 'node:module';
import type pg from 'pg';

let loaded: typeof pg | undefined;

export function loadPg(): typeof pg {
  if (loaded) return loaded;
  const driver = createRequire(import.meta.url)('pg') as typeof pg;
  // BIGINT (int8) and COUNT(*) come back from pg as strings; our values stay far below 2^53.
  driver.types.setTypeParser(20, (v) => Number(v));
  driver.types.setTypeParser(1700, (v) => Number(v));
  loaded = driver;
  return driver;
}
