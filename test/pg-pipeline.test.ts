// The PostgreSQL pipeline the ledger's batches run in (src/db/pg-pipeline.ts), against the real
// server: its statements commit together or not at all, values travel as parameters (never as
// SQL), prepared names are parsed once per connection, and a bad value sends nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadPg } from '../src/db/pg-driver.ts';
import { runPipeline } from '../src/db/pg-pipeline.ts';
import { createTestDatabase, type TestDatabase, testDatabaseKinds } from './support/databases.ts';

describe('PostgreSQL pipeline', { skip: !testDatabaseKinds().includes('postgres') }, () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  const rows = async () => (await pool.query('SELECT id, n FROM t ORDER BY id')).rows as { id: string; n: number }[];

  before(async () => {
    database = await createTestDatabase('postgres');
    pool = new (loadPg().Pool)({ connectionString: database.url, max: 1 });
    await pool.query('CREATE TABLE t (id text PRIMARY KEY, n bigint NOT NULL)');
  });
  after(async () => {
    await pool?.end();
    await database?.drop();
  });

  const insert = (id: string, n: number, name?: string) => ({ text: 'INSERT INTO t (id, n) VALUES ($1, $2)', values: [id, n], name });

  test('answers each statement’s row count, and a failing statement keeps none of the others', async () => {
    await pool.query('TRUNCATE t');
    const client = await pool.connect();
    try {
      const counts = await runPipeline(client, [
        insert('a', 1),
        insert('b', 2),
        { text: 'UPDATE t SET n = n + $1 WHERE id IN ($2, $3)', values: [10, 'a', 'b'] },
        { text: 'SELECT id FROM t WHERE n > $1', values: [100] },
      ]);
      assert.deepEqual(counts, [1, 1, 2, 0]);
      // The third statement breaks the primary key: the two before it are rolled back with it.
      await assert.rejects(runPipeline(client, [insert('c', 3), insert('d', 4), insert('a', 5), insert('e', 6)]), { code: '23505' });
      // pg delivers the rest of that pipeline's answer to nobody; the connection still works.
      assert.deepEqual(await runPipeline(client, [insert('f', 7)]), [1]);
    } finally {
      client.release();
    }
    assert.deepEqual(await rows(), [
      { id: 'a', n: 11 },
      { id: 'b', n: 12 },
      { id: 'f', n: 7 },
    ]);
  });

  test('values are parameters: a quote or a statement in one is stored as text', async () => {
    await pool.query('TRUNCATE t');
    const client = await pool.connect();
    try {
      const hostile = "x'); DROP TABLE t; --";
      assert.deepEqual(await runPipeline(client, [insert(hostile, 1)]), [1]);
    } finally {
      client.release();
    }
    assert.deepEqual(await rows(), [{ id: "x'); DROP TABLE t; --", n: 1 }]);
  });

  test('a named statement is parsed once per connection and then only bound', async () => {
    await pool.query('TRUNCATE t');
    const client = await pool.connect();
    const prepared = new Set<string>();
    try {
      await runPipeline(client, [insert('a', 1, 'pipeline_insert'), insert('b', 2, 'pipeline_insert')], prepared);
      assert.deepEqual([...prepared], ['pipeline_insert']);
      await runPipeline(client, [insert('c', 3, 'pipeline_insert')], prepared);
      const kept = await client.query("SELECT name FROM pg_prepared_statements WHERE name = 'pipeline_insert'");
      assert.equal(kept.rowCount, 1);
      // Had the second pipeline parsed it again, PostgreSQL would have refused a duplicate name.
    } finally {
      client.release();
    }
    assert.equal((await rows()).length, 3);
  });

  test('a value the ledger never writes sends nothing', async () => {
    await pool.query('TRUNCATE t');
    const client = await pool.connect();
    try {
      await assert.rejects(runPipeline(client, [insert('a', 1), insert('b', 1.5)]), TypeError);
      await assert.rejects(runPipeline(client, [insert('a', 1), { text: 'SELECT $1', values: [{}] }]), TypeError);
      assert.deepEqual(await runPipeline(client, [insert('z', 1)]), [1]);
    } finally {
      client.release();
    }
    assert.deepEqual(await rows(), [{ id: 'z', n: 1 }]);
  });
});
