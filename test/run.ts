// `npm test`: finds out once whether PostgreSQL is reachable (one clear line if not; a failure
// under CI=true), then runs every test file with node:test, over SQLite and PostgreSQL, in a few
// worker processes (test/shard.ts) that each take the next file when they are done with one.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { MARKER } from './shard-marker.ts';
import { ensureBuilt } from './support/build.ts';
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

const root = new URL('.', import.meta.url).pathname;
// The server and the dashboard are built (when stale) once, before any test runs: the served
// processes and the CLI tests run dist/ as `npm start` does, and no test builds beside the others.
ensureBuilt();
process.env.BIZORA_TEST_BUILT = '1';
const problem = await postgresReachable();
if (problem) {
  const where = PG_ADMIN_URL.replace(/\/\/[^@]*@/, '//');
  if (process.env.CI === 'true') {
    console.error(`PostgreSQL is not reachable at ${where} (${problem}); under CI=true that is a failure.`);
    process.exit(1);
  }
  console.log(`PostgreSQL is not reachable at ${where} (${problem}): running the SQLite half of the suite only.`);
}

const only = process.argv.slice(2);
const files = (only.length ? only : testFiles(root).map((f) => relative(process.cwd(), f))).sort();
// Workers: one per core. A third finished no sooner (the suite is bound by CPU) and loaded the
// machine enough to make timing tests fail.
const workers = Math.min(files.length, Number(process.env.BIZORA_TEST_WORKERS) || 2);
// Files that measure how fast the server answers while it works hard run last, on a machine with
// nothing else of ours running: beside another worker and its child processes on two cores, any
// process can wait 100 ms and more for a CPU, whatever the server does.
const ALONE = new Set([join('test', 'bounded-work.test.ts')]);
// The longest files start first, so that no worker is left with one of them at the end while
// the other idles (the browser suite alone takes about 18 s, the CLI's 8 s per database).
const LONGEST_FIRST = ['dashboard.browser', 'cli', 'crash', 'shutdown', 'db-outage', 'deadlines', 'dashboard-safety'].map((n) =>
  join('test', `${n}.test.ts`),
);
const rank = (f: string) => (LONGEST_FIRST.includes(f) ? LONGEST_FIRST.indexOf(f) : LONGEST_FIRST.length);
const queue = files.filter((f) => !ALONE.has(f)).sort((a, b) => rank(a) - rank(b));
const alone = files.filter((f) => ALONE.has(f));
const started = performance.now();
const totals = new Map<string, number>();
let failed = false;

/**
 * One worker's TAP, printed a whole file at a time (so that workers do not interleave inside
 * a file's output), without the marker tests and with the summary lines kept for the total.
 */
function relay(out: NodeJS.ReadableStream): Promise<void> {
  let pending: string[] = [];
  let skipping = false;
  const line = (l: string) => {
    if (skipping) {
      if (l === '  ...') skipping = false;
      return;
    }
    if (l.includes(MARKER)) {
      if (l.startsWith('# Subtest:')) return;
      if (l.startsWith('ok ')) {
        skipping = true;
        process.stdout.write(pending.join('\n') + (pending.length ? '\n' : ''));
        pending = [];
        return;
      }
    }
    const summary = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(l);
    if (summary) {
      totals.set(summary[1] as string, (totals.get(summary[1] as string) ?? 0) + Number(summary[2]));
      return;
    }
    if (/^1\.\.\d+$|^# duration_ms |^TAP version/.test(l)) return;
    pending.push(l);
  };
  const lines = createInterface({ input: out, crlfDelay: Number.POSITIVE_INFINITY });
  lines.on('line', line);
  return new Promise((resolve) =>
    lines.on('close', () => {
      if (pending.length) process.stdout.write(`${pending.join('\n')}\n`);
      resolve();
    }),
  );
}

function runWorker(): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=tap', join(root, 'shard.ts')], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, BIZORA_TEST_POSTGRES: problem ? '0' : '1' },
  });
  child.on('message', () => child.send({ file: queue.shift() ?? null }));
  const relayed = relay(child.stdout as NodeJS.ReadableStream);
  return new Promise((resolve) =>
    child.on('exit', async (code, signal) => {
      await relayed;
      if (code !== 0) failed = true;
      if (signal) console.log(`# a test worker was killed by ${signal}`);
      resolve();
    }),
  );
}

console.log('TAP version 13');
if (queue.length) await Promise.all(Array.from({ length: Math.min(workers, queue.length) }, runWorker));
if (alone.length) {
  queue.push(...alone);
  await runWorker();
}
// Each file's marker is a passing test of the runner's, not of the suite.
totals.set('tests', (totals.get('tests') ?? 0) - files.length);
totals.set('pass', (totals.get('pass') ?? 0) - files.length);
for (const k of ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo']) console.log(`# ${k} ${totals.get(k) ?? 0}`);
console.log(`# duration_ms ${Math.round(performance.now() - started)} (${files.length} files, ${workers} workers)`);
if (queue.length) console.log(`# ${queue.length} files were never run`);
process.exit(failed || queue.length || (totals.get('fail') ?? 0) > 0 ? 1 : 0);
