// `npm run bench`: gateway overhead and throughput, honestly, with billing on.
//
// Starts on loopback a mock upstream, our server (one Node process, a live key, every request
// authenticated, held, settled and recorded), a bare Node keep-alive forwarder and Portkey's
// open-source gateway, all in front of the same mock; drives each in turn, interleaved, at 1 and
// 32 connections, JSON and streaming; prints one table; then repeats ours on PostgreSQL. Finally
// it checks its own honesty: every 200 it received is a succeeded usage record, and the ledger
// verifies. `--smoke` runs a short version (.ci/run runs it). `--ab <revision>` runs that git
// revision's server beside ours on SQLite, in the same interleaved rounds: a before/after on the
// same machine at the same time, which a noisy machine needs (bench/README.md).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Client } from 'undici';
import { createAccount } from '../src/accounts/account-store.ts';
import { grantCredit, verifyLedger } from '../src/billing/ledger.ts';
import { createLedgerExecutor } from '../src/billing/ledger-executor.ts';
import { centsToMicros } from '../src/billing/pricing.ts';
import { openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { createKey } from '../src/keys/key-store.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.ts';
import { freePort } from '../test/support/free-port.ts';

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    samples: { type: 'string' },
    'no-portkey': { type: 'boolean', default: false },
    'no-postgres': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    json: { type: 'string' },
    ab: { type: 'string' },
    'key-limits': { type: 'boolean', default: false },
    mode: { type: 'string' },
  },
});
const SMOKE = args.smoke === true;
// Portkey is a comparison for the full run; the smoke run (CI) drives our own targets only.
const PORTKEY = !args['no-portkey'] && !SMOKE;
const PORTKEY_PACKAGE = '@portkey-ai/gateway@1.15.2';
// --key-limits: our key has limits it never reaches (the cost of checking them); without --ab, the
// same server is also driven with an unlimited key, in the same rounds: two processes of one build
// differ by more than what is measured here (bench/README.md, step 24).
const KEY_LIMITS = args['key-limits'] === true;
const ROUNDS = Number(args.rounds ?? (SMOKE ? 1 : 3));
const DURATION_S = Number(args.duration ?? (SMOKE ? 1 : 6));
const SAMPLES = Number(args.samples ?? (SMOKE ? 50 : 1500));
// --mode json|stream: only that one (a profile or an A/B of one path).
const MODES: Mode[] = args.mode === 'json' || args.mode === 'stream' ? [args.mode] : ['json', 'stream'];
const ROOT = new URL('..', import.meta.url).pathname;
const PG_URL = process.env.BIZORA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

type Mode = 'json' | 'stream';
type Target = {
  name: string;
  origin: string;
  headers: Record<string, string>;
  model: string;
  proc?: ChildProcess;
  /** x-request-id of every 200 received, for the honesty check. */
  ids?: Set<string>;
};
type Row = {
  target: string;
  mode: Mode;
  conns: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** The target process's CPU time (user and system) per request, in µs: steadier than req/s on a shared machine. */
  cpuUs: number;
  /** The load generator's (this process's) CPU time per request, in µs: when it nears a core, it sets the pace. */
  clientUs: number;
  errors: number;
};

const children: ChildProcess[] = [];
const log = (msg: string) => process.stderr.write(`${msg}\n`);

function start(cmd: string[], env: Record<string, string>, cwd = ROOT): ChildProcess {
  const [exe, ...rest] = cmd;
  const proc = spawn(exe as string, rest, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  proc.on('exit', (code) => {
    if (code && code !== 0 && !stopping) log(`${cmd.join(' ')} exited ${code}: ${err}`);
  });
  children.push(proc);
  return proc;
}

async function waitFor(url: string, init?: RequestInit): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(url, init);
      await r.arrayBuffer();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${url} did not come up`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const body = (t: Target, mode: Mode) =>
  JSON.stringify({
    model: t.model,
    messages: [{ role: 'user', content: 'Say hello to the benchmark.' }],
    max_tokens: 16,
    ...(mode === 'stream' ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

// Clock ticks per second of /proc's CPU times (getconf CLK_TCK: 100 on Linux).
const CLK_TCK = 100;
/** A process's CPU time so far, user and system, in µs (NaN without a process of ours). */
function cpuMicros(t: Target): number {
  const pid = t.proc?.pid;
  if (!pid) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After the command's name in parentheses: state, then utime and stime at the 12th and 13th places.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** This process's CPU time since `from`, in µs. */
function clientMicros(from: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(from);
  return user + system;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** One connection, sequential requests, timed with hrtime: total time (JSON) or first byte (stream). */
async function sequential(t: Target, mode: Mode, n: number): Promise<Row> {
  const client = new Client(t.origin, { keepAliveTimeout: 60_000 });
  const payload = body(t, mode);
  const times: number[] = [];
  let errors = 0;
  const cpu0 = cpuMicros(t);
  const client0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const res = await client.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...t.headers },
      body: payload,
    });
    let first = 0n;
    for await (const _chunk of res.body) if (!first) first = process.hrtime.bigint();
    const end = process.hrtime.bigint();
    if (res.statusCode !== 200) errors++;
    else if (t.ids) t.ids.add(String(res.headers['x-request-id']));
    times.push(Number((mode === 'stream' ? first || end : end) - t0) / 1e6);
  }
  const total = Number(process.hrtime.bigint() - started) / 1e9;
  await client.close();
  times.sort((a, b) => a - b);
  return {
    target: t.name,
    mode,
    conns: 1,
    rps: n / total,
    p50: quantile(times, 0.5),
    p90: quantile(times, 0.9),
    p99: quantile(times, 0.99),
    p999: quantile(times, 0.999),
    cpuUs: (cpuMicros(t) - cpu0) / n,
    clientUs: clientMicros(client0) / n,
    errors,
  };
}

/** 32 connections with autocannon for DURATION_S seconds. */
async function loaded(t: Target, mode: Mode, connections: number): Promise<Row> {
  const ids = t.ids;
  const cpu0 = cpuMicros(t);
  const client0 = process.cpuUsage();
  const result = await autocannon({
    url: t.origin,
    connections,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', ...t.headers },
        body: body(t, mode),
        onResponse: (status, _body, _ctx, headers) => {
          if (status === 200 && ids) ids.add(String(headers?.['x-request-id']));
        },
      },
    ],
  });
  const errors = result.non2xx + result.errors + result.timeouts;
  return {
    target: t.name,
    mode,
    conns: connections,
    rps: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    cpuUs: (cpuMicros(t) - cpu0) / result.requests.total,
    clientUs: clientMicros(client0) / result.requests.total,
    errors,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Runs every scenario over the targets, interleaved round by round; returns median rows. */
async function drive(targets: Target[]): Promise<Row[]> {
  const runs = new Map<string, Row[]>();
  const add = (r: Row) => {
    const k = `${r.target}|${r.mode}|${r.conns}`;
    runs.set(k, [...(runs.get(k) ?? []), r]);
  };
  for (const t of targets) for (const mode of MODES) await sequential(t, mode, Math.min(200, SAMPLES)); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    // Every other round in reverse order, so that no target always runs just after the same one.
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const mode of MODES) {
      for (const t of order) add(await sequential(t, mode, SAMPLES));
      for (const t of order) add(await loaded(t, mode, 32));
    }
    log(`  round ${round + 1}/${ROUNDS} done`);
  }
  return [...runs.values()].map((rs) => ({
    ...(rs[0] as Row),
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p90: median(rs.map((r) => r.p90)),
    p99: median(rs.map((r) => r.p99)),
    p999: median(rs.map((r) => r.p999)),
    cpuUs: median(rs.map((r) => r.cpuUs)),
    clientUs: median(rs.map((r) => r.clientUs)),
    errors: rs.reduce((s, r) => s + r.errors, 0),
  }));
}

const peakRssMb = (pid: number | undefined): number => {
  if (!pid) return Number.NaN;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

/** `npm start`'s command line, word for word (with this Node and any extra Node flags): what users run. */
function startCommand(nodeFlags: string[], root: string): string[] {
  const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [node, ...rest] = script.split(/\s+/);
  if (node !== 'node') throw new Error(`npm start is not a node command: ${script}`);
  return [process.execPath, ...nodeFlags, ...rest];
}

/** A balance no benchmark can exhaust: $10 million. */
const BENCH_CENTS = 10_000_000 * 100;

/** An account with a balance and a live key, set up by this checkout's code. */
async function benchKey(databaseUrl: string, limited: boolean): Promise<string> {
  const database = openDatabase(databaseUrl);
  await migrateToLatest(database.db);
  const now = Date.now();
  const account = await createAccount(database.db, { email: `bench-${now}-${limited ? 'limited' : 'unlimited'}@example.com`, now });
  await createLedgerExecutor(database).run((s) =>
    grantCredit(s, { accountId: account.id, micros: centsToMicros(BENCH_CENTS), reason: 'benchmark', now }),
  );
  // --key-limits: limits every request is checked against and none reaches (the cost of checking).
  const limits = limited ? { rpm: 1_000_000_000, tpm: 1_000_000_000, max_concurrency: 1_000_000 } : {};
  const key = await createKey(database.db, { accountId: account.id, name: 'benchmark', mode: 'live', now, limits });
  await database.close();
  return key.key;
}

/**
 * The same, by another revision's own `bizora` command (its migrations, its tables): this
 * checkout's code cannot set up a database of an older schema.
 */
function benchKeyByCommand(databaseUrl: string, root: string): string {
  const bizora = (...a: string[]) =>
    execFileSync(process.execPath, [join(root, 'bin', 'bizora.js'), ...a, '--json'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, BIZORA_DATABASE_URL: databaseUrl },
    });
  const email = `bench-${Date.now()}@example.com`;
  bizora('accounts', 'create', '--email', email);
  bizora('credits', 'grant', '--account', email, '--cents', String(BENCH_CENTS), '--reason', 'benchmark');
  return (JSON.parse(bizora('keys', 'create', '--account', email, '--name', 'benchmark')) as { key: string }).key;
}

async function startOurs(databaseUrl: string, mockOrigin: string, name: string, root = ROOT, limited = KEY_LIMITS): Promise<Target> {
  const key = root === ROOT ? await benchKey(databaseUrl, limited) : benchKeyByCommand(databaseUrl, root);
  const port = await freePort();
  const flags = args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'profiles')}`] : [];
  const proc = start(
    startCommand(flags, root),
    {
      BIZORA_PORT: String(port),
      BIZORA_DATABASE_URL: databaseUrl,
      BIZORA_UPSTREAM_URL: `${mockOrigin}/v1`,
      BIZORA_UPSTREAM_MODEL: 'bench-model',
    },
    root,
  );
  const origin = `http://127.0.0.1:${port}`;
  await waitFor(`${origin}/healthz`);
  return { name, origin, headers: { authorization: `Bearer ${key}` }, model: 'bizora', proc, ids: new Set() };
}

/**
 * Another git revision's server, from a worktree of it beside this checkout (sharing its
 * node_modules), on its own SQLite file: `--ab <revision>`. Its database is set up by its own
 * `bizora` command.
 */
/** A git revision's server in a worktree of its own, started on whichever database is asked for. */
async function checkOutRevision(revision: string, scratch: string) {
  const dir = join(scratch, 'ab');
  execFileSync('git', ['worktree', 'add', '--detach', dir, revision], { cwd: ROOT, stdio: 'ignore' });
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' });
  };
  process.on('exit', remove);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  // A revision with a build step is built as `npm start` would; older ones built themselves.
  if (existsSync(join(dir, 'scripts', 'build.mjs'))) {
    execFileSync(process.execPath, [join(dir, 'scripts', 'build.mjs'), '--quiet'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const short = execFileSync('git', ['rev-parse', '--short', revision], { cwd: ROOT, encoding: 'utf8' }).trim();
  return {
    start: (databaseUrl: string, mockOrigin: string, database: string) =>
      startOurs(databaseUrl, mockOrigin, `bizora (${database}) @ ${short}`, dir),
    remove,
  };
}

/** Every 200 we received is a succeeded usage record; the ledger verifies. */
async function honesty(t: Target, databaseUrl: string): Promise<{ ok: boolean; line: string }> {
  const database = openDatabase(databaseUrl);
  const ids = [...(t.ids ?? [])];
  let found = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const batch = ids.slice(i, i + 500);
    const r = await database.db
      .selectFrom('usage_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('id', 'in', batch)
      .where('status', '=', 'succeeded')
      .where('cost_micros', '>', 0)
      .executeTakeFirstOrThrow();
    found += Number(r.n);
  }
  // An older revision's database lacks this checkout's newer tables: brought up to date (its run
  // is over) so that this checkout's verify can read it; migrations only add.
  await migrateToLatest(database.db);
  const report = await verifyLedger(database.db);
  await database.close();
  const ok = found === ids.length && report.ok && report.openHolds === 0;
  return {
    ok,
    line: `${t.name}: ${ids.length} responses with 200, ${found} of them billed usage records; ledger ${report.ok ? 'verifies' : `BROKEN: ${report.problems.join('; ')}`}, ${report.openHolds} open holds`,
  };
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');

function table(rows: Row[], directName: string, rss: Map<string, number>): string {
  const direct = (mode: Mode, conns: number) => rows.find((r) => r.target === directName && r.mode === mode && r.conns === conns);
  const lines = [
    '| target | mode | conns | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | added p99.9 ms | CPU µs/req | client CPU µs/req | peak RSS MB | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const conns of [1, 32]) {
    for (const mode of ['json', 'stream'] as Mode[]) {
      for (const r of rows.filter((x) => x.mode === mode && x.conns === conns)) {
        const d = direct(mode, conns);
        const added = (q: 'p50' | 'p99' | 'p999') => (r.target === directName || !d ? '' : fmt(r[q] - d[q], conns === 1 ? 3 : 1));
        const dec = conns === 1 ? 3 : 0;
        lines.push(
          `| ${r.target} | ${mode}${mode === 'stream' && conns === 1 ? ' (TTFB)' : ''} | ${conns} | ${fmt(r.rps, 0)} | ${fmt(r.p50, dec)} | ${fmt(r.p90, dec)} | ${fmt(r.p99, dec)} | ${fmt(r.p999, dec)} | ${added('p50')} | ${added('p99')} | ${added('p999')} | ${fmt(r.cpuUs, 0)} | ${fmt(r.clientUs, 0)} | ${rss.has(r.target) ? fmt(rss.get(r.target) as number, 0) : ''} | ${r.errors} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

let stopping = false;
function stopAll(): void {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

/** Portkey's gateway, installed on first use into bench/.portkey (it is not one of our dependencies). */
function portkeyServer(): string {
  const prefix = join(ROOT, 'bench', '.portkey');
  const server = join(prefix, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  if (!existsSync(server)) {
    log(`installing ${PORTKEY_PACKAGE} into bench/.portkey (once; --no-portkey skips it)`);
    execFileSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', PORTKEY_PACKAGE], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return server;
}

async function main(): Promise<number> {
  const started = Date.now();
  // The server under test runs its build, as `npm start` does.
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--if-stale', '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const scratch = mkdtempSync(join(tmpdir(), 'bizora-bench-'));
  const mockPort = await freePort();
  const mockOrigin = `http://127.0.0.1:${mockPort}`;
  const mockProc = start([process.execPath, '--import', 'tsx', 'bench/mock-upstream.ts'], { PORT: String(mockPort) });
  await waitFor(mockOrigin, { method: 'POST', body: '{}' });

  const fwdPort = await freePort();
  const fwdProc = start([process.execPath, '--import', 'tsx', 'bench/bare-forwarder.ts'], { PORT: String(fwdPort), UPSTREAM: mockOrigin });
  const forwarder: Target = {
    name: 'bare forwarder',
    origin: `http://127.0.0.1:${fwdPort}`,
    headers: {},
    model: 'bench-model',
    proc: fwdProc,
  };
  await waitFor(`${forwarder.origin}/v1/chat/completions`, { method: 'POST', body: '{}' });

  const direct: Target = { name: 'direct upstream', origin: mockOrigin, headers: {}, model: 'bench-model', proc: mockProc };
  const sqliteUrl = `sqlite:${join(scratch, 'bench.db')}`;
  const ours = await startOurs(sqliteUrl, mockOrigin, KEY_LIMITS ? 'bizora (SQLite), key limits' : 'bizora (SQLite)');
  const targets: Target[] = [direct, forwarder, ours];
  const revision = args.ab ? await checkOutRevision(args.ab, scratch) : undefined;
  const abSqliteUrl = `sqlite:${join(scratch, 'ab.db')}`;
  // --key-limits without --ab: the same server with an unlimited key of its own, in the same rounds.
  const ab = revision
    ? await revision.start(abSqliteUrl, mockOrigin, 'SQLite')
    : KEY_LIMITS
      ? {
          ...ours,
          name: 'bizora (SQLite), no limits',
          headers: { authorization: `Bearer ${await benchKey(sqliteUrl, false)}` },
          ids: new Set<string>(),
        }
      : undefined;
  if (ab) targets.push(ab);

  if (PORTKEY) {
    const pkPort = await freePort();
    const pkProc = start([process.execPath, portkeyServer(), `--port=${pkPort}`, '--headless'], {});
    const portkey: Target = {
      name: 'portkey gateway',
      origin: `http://127.0.0.1:${pkPort}`,
      headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${mockOrigin}/v1`, authorization: 'Bearer sk-bench-unused' },
      model: 'bench-model',
      proc: pkProc,
    };
    await waitFor(`${portkey.origin}/`);
    targets.push(portkey);
  }

  log(
    `benchmark: ${ROUNDS} round(s), ${DURATION_S} s per loaded run, ${SAMPLES} sequential samples; targets: ${targets.map((t) => t.name).join(', ')}`,
  );
  const rows = await drive(targets);
  const rss = new Map<string, number>([[ours.name, peakRssMb(ours.proc?.pid)]]);
  for (const t of targets) if (t.proc && t !== ours) rss.set(t.name, peakRssMb(t.proc.pid));
  ours.proc?.kill('SIGTERM');
  await new Promise((r) => ours.proc?.once('exit', r));
  const checks = [await honesty(ours, sqliteUrl)];
  if (ab && ab.proc === ours.proc) checks.push(await honesty(ab, sqliteUrl));
  else if (ab) {
    ab.proc?.kill('SIGTERM');
    await new Promise((r) => ab.proc?.once('exit', r));
    checks.push(await honesty(ab, abSqliteUrl));
  }

  let pgRows: Row[] = [];
  const pgName = KEY_LIMITS ? 'bizora (PostgreSQL), key limits' : 'bizora (PostgreSQL)';
  let pgDb: TestDatabase | undefined;
  if (!args['no-postgres']) {
    try {
      pgDb = await createTestDatabase('postgres');
    } catch (err) {
      log(`PostgreSQL not reachable at ${PG_URL} (${(err as Error).message}): skipping the PostgreSQL run`);
    }
  }
  if (pgDb) {
    const oursPg = await startOurs(pgDb.url, mockOrigin, pgName);
    const pgTargets = [direct, forwarder, oursPg];
    // The revision on a database of its own, in the same interleaved rounds.
    const abDb = revision ? await createTestDatabase('postgres') : undefined;
    const abPg = revision && abDb ? await revision.start(abDb.url, mockOrigin, 'PostgreSQL') : undefined;
    if (abPg) pgTargets.push(abPg);
    log('PostgreSQL run');
    pgRows = await drive(pgTargets);
    for (const [t, url] of [[oursPg, pgDb.url], ...(abPg && abDb ? [[abPg, abDb.url] as const] : [])] as const) {
      rss.set(t.name, peakRssMb(t.proc?.pid));
      t.proc?.kill('SIGTERM');
      await new Promise((r) => t.proc?.once('exit', r));
      checks.push(await honesty(t, url));
    }
    await pgDb.drop();
    await abDb?.drop();
  }
  revision?.remove();

  const cpus = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const out: string[] = [];
  out.push(
    `Bizora gateway benchmark — ${new Date().toISOString()} — node ${process.version}, ${cpus}, ${(await import('node:os')).availableParallelism()} cores`,
  );
  out.push(
    `${ROUNDS} round(s) interleaved; loaded runs ${DURATION_S} s with autocannon; 1-connection runs ${SAMPLES} sequential requests timed with hrtime (stream: time to first byte); medians over rounds`,
  );
  out.push('');
  out.push(table(rows, direct.name, rss));
  if (pgRows.length) {
    out.push('');
    out.push('PostgreSQL (same scenarios, interleaved with the direct upstream and the forwarder):');
    out.push('');
    out.push(table(pgRows, direct.name, rss));
  }

  // The issue's targets, judged on this run.
  const get = (rs: Row[], target: string, mode: Mode, conns: number) =>
    rs.find((r) => r.target === target && r.mode === mode && r.conns === conns);
  const verdicts: Array<[string, boolean | null, string]> = [];
  const oursJ32 = get(rows, ours.name, 'json', 32);
  const fwdJ32 = get(rows, forwarder.name, 'json', 32);
  const pkJ32 = get(rows, 'portkey gateway', 'json', 32);
  const oursS32 = get(rows, ours.name, 'stream', 32);
  const fwdS32 = get(rows, forwarder.name, 'stream', 32);
  const ratio = (a?: Row, b?: Row) => (a && b ? a.rps / b.rps : Number.NaN);
  verdicts.push([
    `throughput at 32 connections (JSON) >= 70% of the bare forwarder`,
    ratio(oursJ32, fwdJ32) >= 0.7,
    `${fmt(100 * ratio(oursJ32, fwdJ32), 0)}%`,
  ]);
  verdicts.push([
    `throughput at 32 connections (stream) >= 70% of the bare forwarder`,
    ratio(oursS32, fwdS32) >= 0.7,
    `${fmt(100 * ratio(oursS32, fwdS32), 0)}%`,
  ]);
  verdicts.push([
    `throughput at 32 connections >= 8x Portkey`,
    pkJ32 ? ratio(oursJ32, pkJ32) >= 8 : null,
    pkJ32 ? `${fmt(ratio(oursJ32, pkJ32), 1)}x` : 'not run',
  ]);
  const addedJ1 = (get(rows, ours.name, 'json', 1)?.p50 ?? Number.NaN) - (get(rows, direct.name, 'json', 1)?.p50 ?? Number.NaN);
  const addedS1 = (get(rows, ours.name, 'stream', 1)?.p50 ?? Number.NaN) - (get(rows, direct.name, 'stream', 1)?.p50 ?? Number.NaN);
  verdicts.push([`added median latency at 1 connection <= 0.3 ms`, addedJ1 <= 0.3, `${fmt(addedJ1, 3)} ms`]);
  // The tail at one connection, over the direct upstream's own: a pause on the request path
  // every few hundred requests (a checkpoint, a flush) shows here and not in the median.
  const tail = (q: 'p99' | 'p999') =>
    (get(rows, ours.name, 'json', 1)?.[q] ?? Number.NaN) - (get(rows, direct.name, 'json', 1)?.[q] ?? Number.NaN);
  verdicts.push([
    `added p99 latency at 1 connection (JSON) <= 2 ms`,
    tail('p99') <= 2,
    `${fmt(tail('p99'), 3)} ms (p99.9: ${fmt(tail('p999'), 3)} ms)`,
  ]);
  verdicts.push([`time to first streamed byte <= 1 ms over the direct upstream`, addedS1 <= 1, `${fmt(addedS1, 3)} ms`]);
  const rssOurs = rss.get(ours.name) ?? Number.NaN;
  verdicts.push([`peak RSS under 150 MB`, rssOurs < 150, `${fmt(rssOurs, 0)} MB`]);
  if (pgRows.length) {
    const r = ratio(get(pgRows, pgName, 'json', 32), get(pgRows, forwarder.name, 'json', 32));
    verdicts.push([`PostgreSQL throughput at 32 connections >= 40% of the bare forwarder`, r >= 0.4, `${fmt(100 * r, 0)}%`]);
  }
  const failing = rows.filter((r) => r.errors > 0);
  if (failing.length) {
    out.push('');
    out.push(
      `Rows with errors (not 200) are not compared: ${failing.map((r) => `${r.target} ${r.mode} x${r.conns}`).join(', ')}.` +
        (failing.some((r) => r.target === 'portkey gateway' && r.mode === 'stream')
          ? " Portkey's streaming path answers 500 on Node 20 here (TypeError: immutable, in its header handling)."
          : ''),
    );
  }
  out.push('');
  out.push('Targets:');
  for (const [what, ok, value] of verdicts) out.push(`- ${ok === null ? 'n/a ' : ok ? 'met ' : 'MISSED'} ${what}: ${value}`);
  out.push('');
  out.push('Honesty:');
  for (const c of checks) out.push(`- ${c.ok ? 'ok' : 'FAILED'} ${c.line}`);
  out.push('');
  out.push(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(out.join('\n'));
  if (args.json) writeFileSync(args.json, JSON.stringify({ rows, pgRows, verdicts, checks }, null, 2));
  rmSync(scratch, { recursive: true, force: true });
  // Exit 1 when our own server failed a request or the honesty check failed; other targets'
  // failures (Portkey's streams) are reported in the table, not ours to fail on.
  const ourErrors = [...rows, ...pgRows].filter((r) => r.target.startsWith('bizora') && r.errors > 0);
  for (const r of ourErrors) console.log(`ERROR: ${r.target} ${r.mode} x${r.conns}: ${r.errors} requests did not get 200`);
  return checks.every((c) => c.ok) && ourErrors.length === 0 ? 0 : 1;
}

const code = await main().catch((err) => {
  console.error(err);
  return 1;
});
stopAll();
process.exit(code);
