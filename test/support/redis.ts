// The Redis the tests share (127.0.0.1:6379, as .ci/run starts it), and whether it answers.
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.BIZORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether Redis answers; under CI=true it must (a failure then, not a skip). */
export async function redisReachable(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    if (process.env.CI === 'true')
      throw new Error(`Redis is not reachable at ${REDIS_URL}; under CI=true the Redis tests must run (.ci/run starts it).`);
    return false;
  } finally {
    redis.disconnect();
  }
}
