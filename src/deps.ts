// The one Deps object built at start-up and handed to buildApp: database, clock, model
// backends, background workers. Tests build their own with a temporary database.
import { SessionSweeper } from './accounts/sessions.ts';
import { ModelRegistry } from './backends/model-registry.ts';
import { HoldSweeper } from './billing/hold-sweeper.ts';
import { createLedgerExecutor, type LedgerExecutor } from './billing/ledger-executor.ts';
import { OpenMeters } from './billing/open-meters.ts';
import { type Config, REQUEST_GRACE_MS } from './config.ts';
import { type Database, type Db, type Dialect, openDatabase } from './db/connection.ts';
import { migrateToLatest } from './db/migrations.ts';
import { InFlightRequests } from './gateway/request-lifetime.ts';
import { cachedKeyFinder, type KeyCache } from './keys/key-cache.ts';
import { postgresKeyChanges, sqliteKeyChanges } from './keys/key-changes.ts';
import { createKeyFinder, type KeyFinder } from './keys/key-lookup.ts';
import { LastUsedTracker } from './keys/last-used.ts';
import { type Clock, systemClock } from './lib/clock.ts';
import { MemoryRateLimiter } from './limits/memory-limiter.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import type { Metrics } from './metrics/metrics.ts';

export type Deps = {
  config: Config;
  db: Db;
  dialect: Dialect;
  clock: Clock;
  /** Runs money operations atomically (group commit on SQLite). */
  ledger: LedgerExecutor;
  /** Requests holding money right now; shutdown waits for them to settle. */
  openMeters: OpenMeters;
  /** The /v1 requests in progress; a shutdown lets them finish, then ends the rest. */
  inFlight: InFlightRequests;
  /** The key look-up of every API request. */
  findKey: KeyFinder;
  /** The cache of key look-ups (absent on PostgreSQL behind a transaction pooler). */
  keyCache: KeyCache | undefined;
  models: ModelRegistry;
  lastUsed: LastUsedTracker;
  sweeper: HoldSweeper;
  /** Deletes expired dashboard sessions. */
  sessionSweeper: SessionSweeper;
  /** Keys' rate limits (requests and tokens per minute, requests at once). */
  limiter: RateLimiter;
  /** What GET /metrics reports; nothing is counted without BIZORA_METRICS_TOKEN. */
  metrics: Metrics | undefined;
};

export async function createDeps(
  config: Config,
  opts: { clock?: Clock; database?: Database } = {},
): Promise<Deps & { close(): Promise<void> }> {
  const database = opts.database ?? openDatabase(config.databaseUrl, { timeoutMs: config.dbTimeoutMs });
  await migrateToLatest(database.db);
  const clock = opts.clock ?? systemClock;
  const models = new ModelRegistry(config);
  const lastUsed = new LastUsedTracker(database.db);
  const ledger = createLedgerExecutor(database, { prepared: config.pgPreparedStatements });
  const sweeper = new HoldSweeper(database.db, ledger, clock, config.holdSweepSeconds * 1000);
  const sessionSweeper = new SessionSweeper(database.db, clock);
  const findKey = createKeyFinder(database, { prepared: config.pgPreparedStatements });
  // Key look-ups are cached (key-cache.ts), except on PostgreSQL through a pooler in transaction
  // mode (BIZORA_PG_PREPARED_STATEMENTS=off), where LISTEN does not work.
  const watch =
    database.dialect === 'sqlite'
      ? sqliteKeyChanges(database.sqlite)
      : config.pgPreparedStatements
        ? postgresKeyChanges(config.databaseUrl)
        : undefined;
  const keyCache = watch ? cachedKeyFinder(findKey, { watch, now: clock.now }) : undefined;
  // Redis's client and prom-client are loaded only when configured (memory: bench/README.md).
  const limiter: RateLimiter = config.redisUrl
    ? new (await import('./limits/redis-limiter.ts')).RedisRateLimiter({
        url: config.redisUrl,
        onFailure: config.limitsOnRedisFailure,
        // A request's in-progress entry outlives the longest a request can run.
        requestLifetimeMs: config.upstreamTimeoutMs + REQUEST_GRACE_MS + config.shutdownGraceMs + 2 * config.dbTimeoutMs,
      })
    : new MemoryRateLimiter();
  return {
    config,
    db: database.db,
    dialect: database.dialect,
    clock,
    ledger,
    openMeters: new OpenMeters(),
    inFlight: new InFlightRequests(),
    findKey: keyCache ? keyCache.find : findKey,
    keyCache,
    models,
    lastUsed,
    sweeper,
    sessionSweeper,
    limiter,
    metrics: config.metricsToken ? new (await import('./metrics/metrics.ts')).Metrics(database) : undefined,
    async close() {
      sweeper.stop();
      sessionSweeper.stop();
      // Each step runs whatever the one before it met (a database that is down cannot take the
      // last-used times, and must still be closed).
      await lastUsed.stop().catch(() => {});
      await models.close().catch(() => {});
      await limiter.close?.().catch(() => {});
      await keyCache?.close();
      await database.close();
    },
  };
}
