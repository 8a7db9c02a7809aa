// The databases every storage and API suite runs on: SQLite always, PostgreSQL when test/run.ts
// found it reachable (BIZORA_TEST_POSTGRES=1). Each harness gets a fresh database of its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BIZORA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type TestDatabase = { url: string; drop(): Promise<void> };
export type DatabaseKind = 'sqlite' | 'postgres';

export function testDatabaseKinds(): DatabaseKind[] {
  return process.env.BIZORA_TEST_POSTGRES === '1' ? ['sqlite', 'postgres'] : ['sqlite'];
}

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'bizora-test-'));
    return { url: `sqlite:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `bizora_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      // pg's pool.end() resolves before its sockets are closed; forcing the drop at once would
      // kill connections that are already on their way out. Wait for them, then insist.
      for (let i = 0; i < 50; i++) {
        const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if (rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
