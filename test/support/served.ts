// The server as users run it (`bin/bizora.js serve`) in a child process, for the tests of the
// process itself (logs, crash, shutdown), and an account seeded straight into its database.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createAccount } from '../../src/accounts/account-store.ts';
import { grantCredit } from '../../src/billing/ledger.ts';
import { createLedgerExecutor } from '../../src/billing/ledger-executor.ts';
import { centsToMicros } from '../../src/billing/pricing.ts';
import { openDatabase } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrations.ts';
import { createKey } from '../../src/keys/key-store.ts';
import { BIN, ensureBuilt } from './build.ts';
import { freePort } from './free-port.ts';

export { BIN };

ensureBuilt();

export type Served = { base: string; process: ChildProcess; exited: Promise<number | null>; output: () => string };

/**
 * Starts `bizora serve` on a free port and resolves once it is ready for traffic: /readyz answers
 * 200 (the database answers, and the server is not shedding load: a cold start on a busy machine
 * can be, for a sample or two, and its first requests would get 503).
 */
export async function serve(env: NodeJS.ProcessEnv): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...env, BIZORA_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  // The first start of a checkout may bundle the server and build the dashboard.
  for (let i = 0; ; i++) {
    try {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
      break;
    } catch {
      if (child.exitCode !== null || i > 1200) assert.fail(`the server did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await whenReady(base);
  return { base, process: child, exited, output: () => output };
}

/** Resolves once the server's /readyz answers 200 again (it may shed load for a moment on a busy machine). */
export async function whenReady(base: string, ms = 5000): Promise<void> {
  const until = performance.now() + ms;
  for (;;) {
    const res = await fetch(`${base}/readyz`);
    await res.arrayBuffer();
    if (res.ok) return;
    if (performance.now() > until) assert.fail(`${base} did not become ready: /readyz ${res.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An account with `cents` of credit and a live key, written to the database before the server starts. */
export async function seedAccount(databaseUrl: string, email: string, cents: number): Promise<{ accountId: string; key: string }> {
  const setup = openDatabase(databaseUrl);
  try {
    await migrateToLatest(setup.db);
    const account = await createAccount(setup.db, { email, now: Date.now() });
    await createLedgerExecutor(setup).run((s) =>
      grantCredit(s, { accountId: account.id, micros: centsToMicros(cents), reason: 'test', now: Date.now() }),
    );
    const { key } = await createKey(setup.db, { accountId: account.id, name: 'served', mode: 'live', now: Date.now() });
    return { accountId: account.id, key };
  } finally {
    await setup.close();
  }
}
