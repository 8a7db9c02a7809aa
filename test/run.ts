// `npm test`: finds out once whether PostgreSQL is reachable (one clear line if not; a failure
// under CI=true), then runs every test file with node:test, over SQLite and PostgreSQL.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { PG_ADMIN_URL } from './support/databases.ts';

async function postgresReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'support' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const problem = await postgresReachable();
if (problem) {
  const where = PG_ADMIN_URL.replace(/\/\/[^@]*@/, '//');
  if (process.env.CI === 'true') {
    console.error(`PostgreSQL is not reachable at ${where} (${problem}); under CI=true that is a failure.`);
    process.exit(1);
  }
  console.log(`PostgreSQL is not reachable at ${where} (${problem}): running the SQLite half of the suite only.`);
}

const root = new URL('.', import.meta.url).pathname;
const only = process.argv.slice(2);
const files = (only.length ? only : testFiles(root).map((f) => relative(process.cwd(), f))).sort();
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, BIZORA_TEST_POSTGRES: problem ? '0' : '1' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
