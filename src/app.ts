// buildApp(deps): a pure factory. Registers the capability plugins and the one error handler;
// opens no sockets and reads no environment (main.ts owns the process, tests own their deps).
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino from 'pino';
import { dashboardApiPlugin } from './dashboard/plugin.ts';
import { webAppPlugin } from './dashboard/web-app.ts';
import type { Deps } from './deps.ts';
import { ApiError } from './errors.ts';
import { v1Plugin } from './gateway/v1-plugin.ts';
import { newId } from './lib/ids.ts';

type AjvError = { instancePath?: string; keyword?: string; message?: string; params?: Record<string, unknown> };

/** `/messages/0/role` -> `messages[0].role`, the way OpenAI names a parameter. */
export function paramOf(e: AjvError): string {
  const parts = (e.instancePath ?? '').split('/').filter(Boolean);
  if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string') parts.push(e.params.missingProperty);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function validationError(errors: AjvError[]): ApiError {
  const e = errors[0] ?? {};
  const param = paramOf(e);
  if (e.keyword === 'required') return new ApiError('invalid_request', { param, message: `Missing required parameter: '${param}'.` });
  if (e.keyword === 'additionalProperties') {
    const extra = String(e.params?.additionalProperty ?? '');
    return new ApiError('invalid_request', {
      param: param ? `${param}.${extra}` : extra,
      message: `Unrecognized request argument supplied: ${extra}`,
    });
  }
  return new ApiError('invalid_request', {
    param: param || null,
    message: `Invalid value for '${param || 'body'}': ${e.message ?? 'is not valid'}.`,
  });
}

/** Maps anything thrown to an ApiError; unknown errors become a bare 500 (and are logged). */
export function toApiError(err: FastifyError | Error): ApiError | null {
  if (err instanceof ApiError) return err;
  const fe = err as FastifyError & { validation?: AjvError[] };
  if (fe.validation) return validationError(fe.validation);
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('body_too_large');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', { param: null });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type');
  }
  if (fe.code?.startsWith('FST_CSRF')) return new ApiError('csrf_invalid');
  if (err instanceof SyntaxError && fe.statusCode === 400) return new ApiError('invalid_json', { param: null });
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError('invalid_request', { status: fe.statusCode, message: 'The request could not be read.' });
  }
  return null;
}

/** One log line per request, after it: method, path (no query string), status, time. */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url.split('?')[0],
      status: reply.raw.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (error) request.log.error({ ...line, err: error }, 'request failed');
    else request.log.info(line, 'request');
  }
}

/** A hop count as the function Fastify's types accept: the nearest `hops` proxies are trusted. */
const trustProxyOption = (t: Deps['config']['trustProxy']) => (typeof t === 'number' ? (_addr: string, hop: number) => hop < t : t);

export type AppOptions = {
  /** Where log lines go (stdout when absent); tests pass a stream to read them. */
  logStream?: NodeJS.WritableStream;
};

export async function buildApp(deps: Deps, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      deps.config.logLevel === 'silent'
        ? false
        : {
            level: deps.config.logLevel,
            // Written synchronously, as Node writes its own stdout to a file or pipe on Linux.
            // pino's default destination hands every line to libuv's thread pool instead, which
            // costs each request a thread wake-up and a second event-loop turn: writing here took
            // 8–10 % off the added latency at one connection and gave 3–6 % more requests per
            // second at 32 (bench/README.md, step 16).
            stream: opts.logStream ?? pino.destination({ dest: 1, sync: true }),
            // Secrets never reach a log line, even at debug level.
            redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'],
          },
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: trustProxyOption(deps.config.trustProxy),
    // Headers and body must arrive within this (a body trickled byte by byte is cut off: 408).
    requestTimeout: deps.config.clientTimeoutMs,
    genReqId: () => newId('req'),
    logController: new OneLinePerRequest(),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  app.decorateRequest('auth', null);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const apiErr = toApiError(err);
    if (!apiErr) {
      request.log.error({ err }, 'unhandled error');
      const internal = new ApiError('internal_error');
      return reply.code(internal.status).headers(internal.headers).send(internal.toBody());
    }
    return reply.code(apiErr.status).headers(apiErr.headers).send(apiErr.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError('route_not_found', { message: `Unknown route: ${request.method} ${request.url.split('?')[0]}` });
    return reply.code(e.status).headers(e.headers).send(e.toBody());
  });

  await app.register(v1Plugin, { prefix: '/v1', deps });
  await app.register(dashboardApiPlugin, { prefix: '/dashboard/api', deps });
  await app.register(webAppPlugin, { config: deps.config });
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}
