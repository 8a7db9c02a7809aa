// The process: loadConfig -> createDeps (migrates) -> buildApp -> listen; background workers;
// graceful shutdown on SIGINT/SIGTERM (stop accepting, finish in-flight requests, flush).
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { ensureWebBuild } from './dashboard/web-app.ts';
import { createDeps } from './deps.ts';
import { tuneHeap } from './lib/memory.ts';

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
  await ensureWebBuild((msg) => console.log(msg));
  const deps = await createDeps(config);
  const app = await buildApp(deps);
  for (const line of deps.models.describe()) app.log.info(line);
  app.log.info(`database: ${deps.dialect}${deps.dialect === 'sqlite' ? ` (${config.databaseUrl.replace(/^sqlite:/, '')})` : ''}`);
  deps.lastUsed.start();
  deps.sweeper.start((err) => app.log.error({ err }, 'hold sweep failed'));
  tuneHeap();
  await app.listen({ host: config.host, port: config.port });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: shutting down`);
    await app.close();
    // Requests whose client is gone may still be settling: let them finish (bounded).
    const unsettled = await deps.openMeters.drain(10_000);
    if (unsettled) app.log.warn(`${unsettled} requests did not settle in time; the sweeper releases their holds`);
    await deps.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
