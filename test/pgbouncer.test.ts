// The server on PostgreSQL behind PgBouncer in transaction mode (Debian's pgbouncer, started by
// this test), with BIZORA_PG_PREPARED_STATEMENTS=off: the balance is exact under concurrency and the ledger
// verifies. (By default statements are kept prepared on each connection, the ledger's batches
// and the key look-up, which PgBouncer's transaction mode cannot promise.) Skipped with a note without PostgreSQL or
// pgbouncer; under CI=true a missing pgbouncer fails (.ci/run installs it).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { PG_ADMIN_URL, testDatabaseKinds } from './support/databases.ts';
import { freePort } from './support/free-port.ts';
import { type Harness, startHarness, testModel } from './support/harness.ts';
import { accountAffording, raceForBalance } from './support/race.ts';

const PGBOUNCER = '/usr/sbin/pgbouncer';
const havePgbouncer = existsSync(PGBOUNCER);
const havePostgres = testDatabaseKinds().includes('postgres');
if (!havePgbouncer) {
  if (process.env.CI === 'true' && havePostgres)
    throw new Error(`pgbouncer is missing at ${PGBOUNCER}; under CI=true it must run (.ci/run installs it).`);
  console.log(`# pgbouncer not found at ${PGBOUNCER} (apt-get install pgbouncer): skipping the PgBouncer suite.`);
}

const K = 6;
const N = 40;
const MAX_TOKENS = 5;
const model = testModel();
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Count the ways a pooler could lose a hold.' }];

/** Resolves once something accepts connections on the port. */
async function listening(port: number, within: number): Promise<void> {
  const until = Date.now() + within;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(true));
      s.on('error', () => resolve(false));
      s.on('connect', () => s.destroy());
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`pgbouncer did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL behind PgBouncer in transaction mode (BIZORA_PG_PREPARED_STATEMENTS=off)', {
  skip: !havePgbouncer || !havePostgres,
}, () => {
  let dir: string;
  let bouncer: ChildProcess;
  let h: Harness;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bizora-pgbouncer-'));
    // PgBouncer will not run as root: it runs as postgres, which must be able to write here.
    chmodSync(dir, 0o777);
    const port = await freePort();
    const upstream = new URL(PG_ADMIN_URL);
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'auth_type = trust',
        `auth_file = ${join(dir, 'users.txt')}`,
        'pool_mode = transaction',
        // Fewer server connections than the server's pool has clients: transactions share them.
        'default_pool_size = 3',
        'max_client_conn = 100',
        // pg sends statement_timeout as a startup parameter; PgBouncer passes on only what it knows.
        'ignore_startup_parameters = statement_timeout',
        `unix_socket_dir = ${dir}`,
        `logfile = ${join(dir, 'pgbouncer.log')}`,
      ].join('\n'),
    );
    writeFileSync(join(dir, 'users.txt'), `"${decodeURIComponent(upstream.username || 'postgres')}" ""\n`);
    bouncer = spawn(PGBOUNCER, ['-u', 'postgres', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
    await listening(port, 5000);
    h = await startHarness('postgres', {
      models: [model],
      env: { BIZORA_PG_PREPARED_STATEMENTS: 'off' },
      connectVia: (url) => {
        const u = new URL(url);
        u.hostname = '127.0.0.1';
        u.port = String(port);
        return u.toString();
      },
    });
  });
  after(async () => {
    await h?.close();
    bouncer?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  test(`a balance that affords exactly ${K} requests: ${N} at once -> ${K} succeed, the rest get 402`, async () => {
    const { accountId, client } = await accountAffording(h, K, model, { messages, maxTokens: MAX_TOKENS });
    const race = await raceForBalance(client, N, { messages, maxTokens: MAX_TOKENS });
    assert.deepEqual({ ok: race.ok, refused: race.refused }, { ok: K, refused: N - K }, JSON.stringify(race.other));
    assert.deepEqual(await h.balanceMicros(accountId), { balance: 0, held: 0 });
    assert.deepEqual((await h.verify()).problems, []);
  });
});
