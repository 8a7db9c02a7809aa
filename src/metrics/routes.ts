// GET /metrics, in Prometheus's text format: served only when BIZORA_METRICS_TOKEN is set, and
// then only to `Authorization: Bearer <that token>` (compared in constant time). Every HTTP
// answer is counted by its route's pattern (never its raw URL, so the label set stays small).
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export function registerMetrics(app: FastifyInstance, deps: Deps): void {
  const { metrics } = deps;
  const token = deps.config.metricsToken;
  // Off by default: nothing is counted, and the route does not exist.
  if (!metrics || !token) return;
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpAnswer(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode);
    done();
  });
  app.get(
    '/metrics',
    { logLevel: 'warn', config: { pressureHandler: () => undefined }, schema: { hide: true } },
    async (request, reply) => {
      const m = /^bearer\s+(\S+)$/i.exec(request.headers.authorization?.trim() ?? '');
      if (!m?.[1] || !sameSecret(m[1], token)) {
        throw new ApiError('invalid_api_key', { message: 'Send the metrics token: Authorization: Bearer <BIZORA_METRICS_TOKEN>.' });
      }
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}
