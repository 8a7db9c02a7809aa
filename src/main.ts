// The process: loadConfig -> createDeps (migrates) -> buildApp -> listen; background workers;
// graceful shutdown on SIGINT/SIGTERM: stop accepting, let in-flight requests finish for the
// grace period, end the rest (billed for what they produced), settle, close the database, exit 0.
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, REQUEST_GRACE_MS } from './config.ts';
import { createDeps } from './deps.ts';
import { collectStartupGarbage } from './lib/memory.ts';

export async function serve(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const deps = await createDeps(config);
  const app = await buildApp(deps);
  for (const line of deps.models.describe()) app.log.info(line);
  app.log.info(`database: ${deps.dialect}${deps.dialect === 'sqlite' ? ` (${config.databaseUrl.replace(/^sqlite:/, '')})` : ''}`);
  deps.lastUsed.start();
  deps.sweeper.start((err) => app.log.error({ err }, 'hold sweep failed'));
  deps.sessionSweeper.start((err) => app.log.error({ err }, 'session sweep failed'));
  collectStartupGarbage();
  await app.listen({ host: config.host, port: config.port });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const { shutdownGraceMs, dbTimeoutMs } = config;
    app.log.info(`${signal}: shutting down; requests in flight have ${shutdownGraceMs / 1000} s to finish`);
    // Whatever hangs below, the process still ends: a shutdown has a deadline too.
    setTimeout(
      () => {
        app.log.error('shutdown did not finish in time; exiting');
        process.exit(1);
      },
      shutdownGraceMs + 2 * dbTimeoutMs + 2 * REQUEST_GRACE_MS,
    ).unref();
    // Stop accepting; idle kept-alive connections are closed, new requests on busy ones get 503.
    const closed = app.close();
    await deps.inFlight.settle(shutdownGraceMs);
    const ended = deps.inFlight.endAll('shutdown');
    if (ended) app.log.warn(`${ended} requests still running after the grace period were ended and billed for what they produced`);
    // Requests ended or whose client is gone may still be settling: let them finish (bounded).
    const unsettled = await deps.openMeters.drain(dbTimeoutMs + REQUEST_GRACE_MS);
    if (unsettled) app.log.warn(`${unsettled} requests did not settle in time; the sweeper releases their holds`);
    // Their last bytes (an error event) get a moment to leave; then every connection is closed.
    await deps.inFlight.settle(1000);
    app.server.closeAllConnections();
    await closed;
    await deps.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
