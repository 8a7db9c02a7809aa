// The `bizora` command: serve, migrate, accounts, credits, keys, admin-keys, balance, ledger. It honours the
// same BIZORA_* variables as the server (through loadConfig). Every command takes --json; a bad
// argument gets one line on stderr and a non-zero exit.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { balanceCents, createAccount, findAccount, isEmail, type PublicAccount } from '../accounts/account-store.ts';
import { generatePassword, hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../accounts/passwords.ts';
import { grantCredit, grantCreditIdempotently, verifyLedger } from '../billing/ledger.ts';
import { createLedgerExecutor } from '../billing/ledger-executor.ts';
import { centsToMicros, floorCents } from '../billing/pricing.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { type Database, openDatabase } from '../db/connection.ts';
import { migrateToLatest } from '../db/migrations.ts';
import type { SpendPeriod } from '../db/schema.ts';
import { ApiError } from '../errors.ts';
import { type KeyLimits, limitColumns, limitsOf, SPEND_PERIODS } from '../keys/key-limits.ts';
import { createKey, listKeys, normalizeKeyName, type PublicKey, revokeKey, rotateKey, updateKey } from '../keys/key-store.ts';
import { parseDuration } from '../lib/durations.ts';
import { createAdminKey, listAdminKeys, revokeAdminKey } from '../management/admin-keys.ts';

class CliError extends Error {}

type Out = { json?: boolean };

const print = (opts: Out, json: unknown, text: string) => console.log(opts.json ? JSON.stringify(json, null, 2) : text);
const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
const dollars = (micros: number) => `$${(floorCents(micros) / 100).toFixed(2)}`;

/** Opens the configured database (migrated first, unless the command is `migrate` itself). */
async function withDb<T>(fn: (d: Database) => Promise<T>, opts: { migrate: boolean } = { migrate: true }): Promise<T> {
  const config = loadConfig();
  const database = openDatabase(config.databaseUrl, { poolSize: 2 });
  try {
    if (opts.migrate) await migrateToLatest(database.db);
    return await fn(database);
  } finally {
    await database.close();
  }
}

async function accountOrFail(d: Database, idOrEmail: string): Promise<PublicAccount> {
  const account = await findAccount(d.db, idOrEmail);
  if (!account) throw new CliError(`no account ${idOrEmail}`);
  return account;
}

const positiveCents = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v) * 10_000))
    throw new InvalidArgumentError('must be a positive whole number of cents');
  return Number(v);
};

// Commander keeps no null from an option's parser, so "no limit" is the word none until limitsFrom.
type None = 'none';

/** A limit flag: a positive whole number, or 0 / "none" for no limit. */
const limitFlag = (v: string): number | None => {
  if (v === '0' || v === 'none') return 'none';
  if (!/^\d{1,10}$/.test(v)) throw new InvalidArgumentError('must be a positive whole number, or 0 / none for no limit');
  return Number(v);
};

const spendPeriod = (v: string): SpendPeriod => {
  if (!(SPEND_PERIODS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${SPEND_PERIODS.join(', ')}`);
  return v as SpendPeriod;
};

const modelList = (v: string): string[] | None =>
  v === 'none'
    ? 'none'
    : v
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean);

const expiresIn = (v: string): number | None => {
  if (v === 'none') return 'none';
  const ms = parseDuration(v);
  if (ms === null || ms === 0) throw new InvalidArgumentError('must be a duration such as 30d, 12h or 90m, or none');
  return ms;
};

const orNull = <T>(v: T | None): T | null => (v === 'none' ? null : v);

type LimitFlags = {
  rpm?: number | None;
  tpm?: number | None;
  maxConcurrency?: number | None;
  spendLimitCents?: number | None;
  spendPeriod?: SpendPeriod;
  models?: string[] | None;
  expiresIn?: number | None;
};

/** The limit flags of `keys create` and `keys update` (the same in the dashboard and the management API). */
const withLimitFlags = (c: Command) =>
  c
    .option('--rpm <n>', 'requests per minute (0 or none: no limit)', limitFlag)
    .option('--tpm <n>', 'tokens per minute, each request counted at its prompt and output limit, then at what it used', limitFlag)
    .option('--max-concurrency <n>', 'requests in progress at once', limitFlag)
    .option('--spend-limit-cents <n>', 'the most the key may spend per --spend-period', limitFlag)
    .option('--spend-period <period>', `day, month (UTC) or total (the default)`, spendPeriod)
    .option('--models <ids>', 'the models the key may call, comma-separated (none: every model)', modelList)
    .option('--expires-in <duration>', 'the key stops working after this long: 30d, 12h, 90m (none: never)', expiresIn);

/** The limits the flags set (undefined: not given), checked as every surface checks them. */
function limitsFrom(opts: LimitFlags): Partial<KeyLimits> {
  const limits: Partial<KeyLimits> = {};
  if (opts.rpm !== undefined) limits.rpm = orNull(opts.rpm);
  if (opts.tpm !== undefined) limits.tpm = orNull(opts.tpm);
  if (opts.maxConcurrency !== undefined) limits.max_concurrency = orNull(opts.maxConcurrency);
  if (opts.spendLimitCents !== undefined) limits.spend_limit_cents = orNull(opts.spendLimitCents);
  if (opts.spendPeriod !== undefined) limits.spend_period = opts.spendPeriod;
  if (opts.models !== undefined) limits.models = orNull(opts.models);
  try {
    limitColumns(limits);
  } catch (err) {
    throw new CliError(err instanceof ApiError ? err.message : String(err));
  }
  return limits;
}

/** A key as the CLI prints it with --json: its limits and expiry too. */
const keyJson = (k: PublicKey) => ({
  id: k.id,
  name: k.name,
  preview: k.preview,
  mode: k.mode,
  ...limitsOf(k),
  expires_at: k.expires_at === null ? null : iso(k.expires_at),
});

/** One line of a key's limits for humans ('' when it has none). */
function limitsLine(k: PublicKey): string {
  const l = limitsOf(k);
  const parts = [
    l.rpm !== null ? `${l.rpm} rpm` : '',
    l.tpm !== null ? `${l.tpm} tpm` : '',
    l.max_concurrency !== null ? `${l.max_concurrency} at once` : '',
    l.spend_limit_cents !== null
      ? `spend ${l.spend_limit_cents} cents per ${l.spend_period === 'total' ? 'all time' : l.spend_period}`
      : '',
    l.models !== null ? `models ${l.models.join(',')}` : '',
    k.expires_at !== null ? `expires ${iso(k.expires_at)}` : '',
  ].filter(Boolean);
  return parts.join(', ');
}

const idempotencyKey = (v: string): string => {
  if (!/^[ -~]{1,255}$/.test(v)) throw new InvalidArgumentError('must be 1 to 255 printable ASCII characters');
  return v;
};

/** All of standard input (a password piped in, so that it stays out of the shell's history). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const balanceView = (a: PublicAccount) => ({
  account_id: a.id,
  email: a.email,
  ...balanceCents(a),
  balance_micros: a.balance_micros,
  held_micros: a.held_micros,
});

export function buildCli(): Command {
  // exitOverride before any subcommand exists, so every subcommand inherits it and argument
  // errors come back to runCli as exceptions instead of exiting from inside commander.
  const program = new Command('bizora')
    .description('Bizora Integration API: server and administration')
    .showHelpAfterError(false)
    .exitOverride();
  const json = (c: Command) => c.option('--json', 'print JSON');

  json(program.command('serve').description('run the API server (applies migrations first)')).action(async () => {
    const { serve } = await import('../main.ts');
    await serve();
  });

  json(program.command('migrate').description('apply pending database migrations')).action(async (opts: Out) => {
    await withDb(
      async (d) => {
        const config = loadConfig();
        const applied = await migrateToLatest(d.db);
        print(
          opts,
          { dialect: d.dialect, applied },
          applied.length
            ? `applied: ${applied.join(', ')}`
            : `${d.dialect} database is up to date (${config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl : 'postgres'})`,
        );
      },
      { migrate: false },
    );
  });

  const accounts = program.command('accounts').description('manage accounts');
  json(
    accounts
      .command('create')
      .description('create an account (the first account on a database is the administrator)')
      .requiredOption('--email <email>', 'email address')
      .option('--name <name>', 'display name')
      .option('--admin', 'make it an administrator')
      .option('--password-stdin', 'read its dashboard password from standard input (else one is generated and printed once)'),
  ).action(async (opts: Out & { email: string; name?: string; admin?: boolean; passwordStdin?: boolean }) => {
    if (!isEmail(opts.email)) throw new CliError(`not an email address: ${opts.email}`);
    const chosen = opts.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : null;
    if (chosen !== null && (chosen.length < MIN_PASSWORD_LENGTH || chosen.length > MAX_PASSWORD_LENGTH))
      throw new CliError(`the password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`);
    const password = chosen ?? generatePassword();
    await withDb(async (d) => {
      if (await findAccount(d.db, opts.email)) throw new CliError(`an account with email ${opts.email} exists already`);
      const a = await createAccount(d.db, {
        email: opts.email,
        name: opts.name ?? null,
        now: Date.now(),
        passwordHash: await hashPassword(password),
        ...(opts.admin ? { role: 'admin' as const } : {}),
      });
      const shown = chosen === null ? { password } : {};
      print(
        opts,
        { id: a.id, email: a.email, name: a.name, role: a.role, ...shown },
        `created ${a.role === 'admin' ? 'administrator' : 'account'} ${a.id} (${a.email})${
          chosen === null ? `\ndashboard password: ${password}\nPass it on now: it will not be shown again.` : ''
        }`,
      );
    });
  });

  const credits = program.command('credits').description('manage prepaid credit');
  json(
    credits
      .command('grant')
      .description('add credit to an account')
      .requiredOption('--account <account>', 'account id or email')
      .requiredOption('--cents <cents>', 'amount in cents', positiveCents)
      .option('--reason <reason>', 'shown in the ledger')
      .option('--idempotency-key <key>', 'grant at most once for this key: run again, it prints the first grant', idempotencyKey),
  ).action(async (opts: Out & { account: string; cents: number; reason?: string; idempotencyKey?: string }) => {
    await withDb(async (d) => {
      const account = await accountOrFail(d, opts.account);
      const ledger = createLedgerExecutor(d);
      const grant = { accountId: account.id, micros: centsToMicros(opts.cents), reason: opts.reason ?? 'CLI grant', now: Date.now() };
      let balance: number | null;
      let replayed = false;
      if (opts.idempotencyKey === undefined) {
        balance = await ledger.run((s) => grantCredit(s, grant));
      } else {
        const r = await grantCreditIdempotently(ledger, { ...grant, idempotencyKey: opts.idempotencyKey });
        if (!r.ok && r.reason === 'key_reused')
          throw new CliError(`idempotency key ${opts.idempotencyKey} was used already for a different grant`);
        balance = r.ok ? r.balanceAfterMicros : null;
        replayed = r.ok && r.replayed;
      }
      if (balance === null) throw new CliError(`no account ${opts.account}`);
      print(
        opts,
        { account_id: account.id, granted_cents: opts.cents, balance_cents: floorCents(balance), replayed },
        replayed
          ? `already granted with this idempotency key: ${opts.cents} cents to ${account.id}; balance after it ${dollars(balance)}`
          : `granted ${opts.cents} cents to ${account.id}; balance ${dollars(balance)}`,
      );
    });
  });

  const adminKeys = program.command('admin-keys').description('manage management keys (sk_admin_…) for the management API, /v1/admin/');
  json(
    adminKeys.command('create').description('create a management key (printed once)').requiredOption('--name <name>', 'what it is for'),
  ).action(async (opts: Out & { name: string }) => {
    const name = normalizeKeyName(opts.name);
    if (!name) throw new CliError('--name must be 1 to 100 characters');
    await withDb(async (d) => {
      const k = await createAdminKey(d.db, { name, now: Date.now() });
      print(
        opts,
        { id: k.id, key: k.key, name: k.name, preview: k.preview },
        `created management key ${k.id} "${k.name}"\n${k.key}\nCopy it now: it will not be shown again. It works on /v1/admin/ only.`,
      );
    });
  });
  json(adminKeys.command('list').description('list management keys')).action(async (opts: Out) => {
    await withDb(async (d) => {
      const list = await listAdminKeys(d.db);
      const rows = list.map((k) => ({
        id: k.id,
        name: k.name,
        preview: k.preview,
        created: iso(k.created_at),
        last_used: k.last_used_at === null ? null : iso(k.last_used_at),
        status: k.revoked_at === null ? 'active' : 'revoked',
      }));
      print(
        opts,
        rows,
        rows.length
          ? rows
              .map((r) => `${r.id}  ${r.preview}  ${r.status.padEnd(7)}  ${r.created}  last used ${r.last_used ?? 'never'}  ${r.name}`)
              .join('\n')
          : 'no management keys',
      );
    });
  });
  json(adminKeys.command('revoke').description('revoke a management key at once').argument('<id>', 'the key id (admkey_…)')).action(
    async (id: string, opts: Out) => {
      await withDb(async (d) => {
        const k = await revokeAdminKey(d.db, id, Date.now());
        if (!k) throw new CliError(`no management key ${id}`);
        print(opts, { id: k.id, status: 'revoked' }, `revoked ${k.id} (${k.preview})`);
      });
    },
  );

  const keys = program.command('keys').description('manage API keys');
  json(
    withLimitFlags(
      keys
        .command('create')
        .description('create an API key (the key is printed once)')
        .requiredOption('--account <account>', 'account id or email')
        .requiredOption('--name <name>', 'a descriptive name')
        .option('--test', 'a sandbox sk_test_ key (never billed, served by the simulator)'),
    ),
  ).action(async (opts: Out & LimitFlags & { account: string; name: string; test?: boolean }) => {
    const name = normalizeKeyName(opts.name);
    if (!name) throw new CliError('--name must be 1 to 100 characters');
    const limits = limitsFrom(opts);
    await withDb(async (d) => {
      const account = await accountOrFail(d, opts.account);
      const now = Date.now();
      const expiresAt = opts.expiresIn === undefined || opts.expiresIn === 'none' ? null : now + opts.expiresIn;
      const k = await createKey(d.db, { accountId: account.id, name, mode: opts.test ? 'test' : 'live', now, expiresAt, limits });
      const line = limitsLine(k);
      print(
        opts,
        { ...keyJson(k), key: k.key },
        `created ${k.mode} key ${k.id} "${k.name}"${line ? ` (${line})` : ''}\n${k.key}\nCopy it now: it will not be shown again.`,
      );
    });
  });
  json(
    withLimitFlags(
      keys
        .command('update')
        .description("change a key's limits or expiry (only the flags given; 0 or none clears one)")
        .argument('<key_id>', 'the key id (key_…)'),
    ),
  ).action(async (keyId: string, opts: Out & LimitFlags) => {
    const limits = limitsFrom(opts);
    await withDb(async (d) => {
      const expiresAt = opts.expiresIn === undefined ? undefined : opts.expiresIn === 'none' ? null : Date.now() + opts.expiresIn;
      const k = await updateKey(d.db, { keyId, limits, ...(expiresAt !== undefined ? { expiresAt } : {}) });
      if (!k) throw new CliError(`no key ${keyId}`);
      print(opts, keyJson(k), `updated ${k.id} (${k.preview}): ${limitsLine(k) || 'no limits'}`);
    });
  });
  json(keys.command('list').description("list an account's keys").requiredOption('--account <account>', 'account id or email')).action(
    async (opts: Out & { account: string }) => {
      await withDb(async (d) => {
        const account = await accountOrFail(d, opts.account);
        const list = await listKeys(d.db, account.id);
        const rows = list.map((k) => ({
          id: k.id,
          name: k.name,
          preview: k.preview,
          mode: k.mode,
          created: iso(k.created_at),
          last_used: k.last_used_at === null ? null : iso(k.last_used_at),
          status: k.revoked_at !== null ? 'revoked' : k.expires_at !== null && k.expires_at <= Date.now() ? 'expired' : 'active',
          ...limitsOf(k),
          expires_at: k.expires_at === null ? null : iso(k.expires_at),
        }));
        print(
          opts,
          rows,
          rows.length
            ? rows
                .map((r, i) => {
                  const limits = limitsLine(list[i] as PublicKey);
                  return `${r.id}  ${r.preview}  ${r.mode}  ${r.status.padEnd(7)}  ${r.created}  last used ${r.last_used ?? 'never'}  ${r.name}${limits ? `  (${limits})` : ''}`;
                })
                .join('\n')
            : 'no keys',
        );
      });
    },
  );
  json(
    keys
      .command('rotate')
      .description('give a key a new secret (printed once): same id, name, limits and usage; the old secret works for --grace')
      .argument('<key_id>', 'the key id (key_…)')
      .option('--grace <duration>', 'how long the old secret keeps working: 24h (the default), 30m, 0 for not at all', '24h'),
  ).action(async (keyId: string, opts: Out & { grace: string }) => {
    const graceMs = parseDuration(opts.grace);
    if (graceMs === null) throw new CliError('--grace must be a duration such as 24h, 30m or 0');
    await withDb(async (d) => {
      const r = await rotateKey(d.db, { keyId, graceMs, now: Date.now() });
      if (!r) throw new CliError(`no active key ${keyId}`);
      const until = r.previous_valid_until === null ? null : iso(r.previous_valid_until);
      print(
        opts,
        { id: r.id, key: r.key, previous_valid_until: until },
        `rotated ${r.id}: the old secret ${until ? `works until ${until}` : 'no longer works'}\n${r.key}\nCopy it now: it will not be shown again.`,
      );
    });
  });
  json(keys.command('revoke').description('revoke a key at once').argument('<key_id>', 'the key id (key_…)')).action(
    async (keyId: string, opts: Out) => {
      await withDb(async (d) => {
        const k = await revokeKey(d.db, { keyId, now: Date.now() });
        if (!k) throw new CliError(`no key ${keyId}`);
        print(opts, { id: k.id, status: 'revoked', revoked_at: iso(k.revoked_at) }, `revoked ${k.id} (${k.preview})`);
      });
    },
  );

  json(program.command('balance').description("an account's balance").requiredOption('--account <account>', 'account id or email')).action(
    async (opts: Out & { account: string }) => {
      await withDb(async (d) => {
        const a = await accountOrFail(d, opts.account);
        print(
          opts,
          balanceView(a),
          `${a.id} (${a.email}): balance ${dollars(a.balance_micros)}, available ${dollars(a.balance_micros - a.held_micros)}, held ${dollars(a.held_micros)}`,
        );
      });
    },
  );

  const ledger = program.command('ledger').description('the money ledger');
  json(ledger.command('verify').description('check that entries sum to balances, holds match, no account is below zero')).action(
    async (opts: Out) => {
      await withDb(async (d) => {
        const report = await verifyLedger(d.db);
        print(
          opts,
          report,
          report.ok
            ? `ledger ok: ${report.accounts} accounts, ${report.entries} entries, ${report.openHolds} open holds`
            : `ledger BROKEN:\n${report.problems.join('\n')}`,
        );
        if (!report.ok) process.exitCode = 1;
      });
    },
  );

  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed its one-line message already; help and version are not failures.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const message = err instanceof ConfigError ? err.message : err instanceof CliError ? err.message : `${(err as Error).message ?? err}`;
    console.error(`bizora: ${message}`);
    process.exitCode = 1;
  }
}

await runCli(process.argv);
