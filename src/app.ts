// buildApp(deps): a pure factory. Registers the capability plugins and the one error handler;
// opens no sockets and reads no environment (main.ts owns the process, tests own their deps).
import type { Socket } from 'node:net';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { Type } from 'typebox';
import { dashboardApiPlugin } from './dashboard/plugin.ts';
import { webAppPlugin } from './dashboard/web-app.ts';
import { databaseUnavailable } from './db/connection.ts';
import type { Deps } from './deps.ts';
import { ApiError } from './errors.ts';
import { v1Plugin } from './gateway/v1-plugin.ts';
import { AllowedMethods } from './http/allowed-methods.ts';
import { ClientConnections } from './http/client-errors.ts';
import { registerJsonBodyParser } from './http/json-body.ts';
import { errorResponses, registerOpenApi, schemaCompilers } from './http/openapi.ts';
import { duplicateKeyHeaders } from './keys/verify.ts';
import { newId } from './lib/ids.ts';
import { PACKAGE_VERSION } from './lib/project-root.ts';
import { managementPlugin } from './management/routes.ts';
import { registerMetrics } from './metrics/routes.ts';

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
    case 'FST_ERR_BAD_URL':
      return new ApiError('invalid_request', { message: 'The request URL is not valid (bad percent-encoding).' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError('uri_too_long');
    // PostgreSQL refuses text it cannot store (a NUL byte, an unpaired surrogate): the client's doing.
    case '22021':
    case '22P05':
      return new ApiError('invalid_text');
  }
  if (databaseUnavailable(err)) return new ApiError('service_unavailable', { headers: { 'retry-after': '1' } });
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

/** URLs longer than this get a 414 (a longer request line overflows the 16 KB of headers: 414 too). */
const MAX_URL_LENGTH = 8192;
/** Node's default, stated: headers over this get a 431. */
const MAX_HEADER_BYTES = 16 * 1024;

/**
 * What every request must satisfy before any route or hook sees it; each check is a comparison
 * or one scan of a short string. A shutdown in progress answers 503 and closes the connection
 * (Fastify's own 503 is not in our shape).
 */
function refuseBadRequest(request: FastifyRequest, closing: boolean): void {
  if (closing) throw new ApiError('service_unavailable', { headers: { connection: 'close' } });
  const raw = request.raw;
  if (raw.headers.host === undefined && raw.httpVersionMajor === 1 && raw.httpVersionMinor === 1) {
    throw new ApiError('malformed_request', { message: 'The request has no Host header.' });
  }
  const url = raw.url ?? '';
  if (url.length > MAX_URL_LENGTH) throw new ApiError('uri_too_long');
  // A NUL byte is in no id, email or filter, and PostgreSQL cannot compare text that holds one.
  if (url.includes('%00')) throw new ApiError('invalid_text', { message: 'The request URL contains a NUL byte (%00).' });
  const duplicate = duplicateKeyHeaders(raw.rawHeaders);
  if (duplicate) throw duplicate;
}

/** A hop count as the function Fastify's types accept: the nearest `hops` proxies are trusted. */
const trustProxyOption = (t: Deps['config']['trustProxy']) => (typeof t === 'number' ? (_addr: string, hop: number) => hop < t : t);

export type AppOptions = {
  /** Where log lines go (stdout when absent); tests pass a stream to read them. */
  logStream?: NodeJS.WritableStream;
};

const Health = Type.Object({ status: Type.Literal('ok'), database: Type.Optional(Type.String()) });

export async function buildApp(deps: Deps, opts: AppOptions = {}): Promise<FastifyInstance> {
  // Made once the app (and its logger) exists; Fastify calls clientErrorHandler only after that.
  let connections: ClientConnections;
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
    http: {
      // Headers trickled byte by byte (slowloris) are cut off by the same deadline. Node checks
      // its deadlines every connectionsCheckingInterval (30 s by default): a tenth of it here.
      headersTimeout: deps.config.clientTimeoutMs,
      requestTimeout: deps.config.clientTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(deps.config.clientTimeoutMs / 10))),
      maxHeaderSize: MAX_HEADER_BYTES,
      // Node answers a missing Host with an empty 400; refuseBadRequest answers it in our shape.
      requireHostHeader: false,
    },
    // Framing errors, 408, 414 and 431 in our shape (http/client-errors.ts), not Fastify's.
    clientErrorHandler: (err: Error, socket: Socket) => connections.onClientError(err, socket),
    // Bad percent-encoding, an over-long path parameter: Fastify's answers echo the URL.
    frameworkErrors(err, request, reply: FastifyReply) {
      const e = toApiError(err) ?? new ApiError('invalid_request');
      return reply.header('x-request-id', request.id).code(e.status).headers(e.headers).send(e.toBody());
    },
    // A shutdown answers in our shape (refuseBadRequest), not with Fastify's 503 body.
    return503OnClosing: false,
    genReqId: () => newId('req'),
    logController: new OneLinePerRequest(),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    schemaController: {
      compilersFactory: {
        buildValidator: schemaCompilers.buildValidator as never,
        buildSerializer: schemaCompilers.buildSerializer as never,
      },
    },
  });
  app.decorateRequest('auth', null);
  connections = new ClientConnections(app.log, MAX_URL_LENGTH);
  connections.listen(app.server, deps.config.bodyLimitBytes);
  registerJsonBodyParser(app);

  const allowedMethods = new AllowedMethods();
  app.addHook('onRoute', (route) => allowedMethods.add(route.method, route.url));
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    connections.closeAll();
  });

  // A callback hook, not an async one: no promise on every request's path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    try {
      refuseBadRequest(request, closing);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const apiErr = toApiError(err);
    if (!apiErr) {
      request.log.error({ err }, 'unhandled error');
      const internal = new ApiError('internal_error');
      return reply.code(internal.status).headers(internal.headers).send(internal.toBody());
    }
    if (apiErr.code === 'body_too_large') {
      // Read the rest of what the client is sending (bounded) so that it can read this answer.
      reply.header('connection', 'close');
      connections.drainThenClose(request.raw, 4 * deps.config.bodyLimitBytes, deps.config.clientTimeoutMs);
    }
    return reply.code(apiErr.status).headers(apiErr.headers).send(apiErr.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const methods = allowedMethods.at(path);
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    const e =
      methods.length > 0
        ? new ApiError('method_not_allowed', {
            message: `${request.method} is not allowed on ${shown}; it answers ${methods.join(', ')}.`,
            headers: { allow: methods.join(', ') },
          })
        : new ApiError('route_not_found', { message: `Unknown route: ${request.method} ${shown}` });
    return reply.code(e.status).headers(e.headers).send(e.toBody());
  });

  // Load shedding: while the event loop lags or the heap is near its limit, new requests are
  // refused at once (503, Retry-After) instead of queueing without bound behind the ones in flight.
  await app.register(underPressure, {
    maxEventLoopDelay: deps.config.maxEventLoopDelayMs,
    maxHeapUsedBytes: deps.config.maxHeapUsedBytes,
    sampleInterval: 250,
    // Thrown, so the one error handler answers it.
    pressureHandler: async () => {
      throw new ApiError('service_unavailable', {
        message: 'The server is overloaded. Retry the request shortly.',
        headers: { 'retry-after': '1' },
      });
    },
  });
  deps.limiter.setLogger?.(app.log);
  registerMetrics(app, deps);
  // Every route registered from here on is in the OpenAPI document (/openapi.json, /docs).
  await registerOpenApi(app, { version: PACKAGE_VERSION });
  const health = { tags: ['Operations'], response: { 200: Health, ...errorResponses() } };
  // Liveness: cheap, touches nothing, answered even under load, not logged at info.
  app.get(
    '/healthz',
    { logLevel: 'warn', config: { pressureHandler: () => undefined }, schema: { ...health, summary: 'Liveness: the process serves' } },
    async () => ({ status: 'ok' }),
  );
  // Readiness: the database answers within its deadline.
  app.get('/readyz', { logLevel: 'warn', schema: { ...health, summary: 'Readiness: the database answers' } }, async (request) => {
    try {
      await sql`SELECT 1`.execute(deps.db);
    } catch (err) {
      request.log.warn({ err }, 'readiness check: the database did not answer');
      throw new ApiError('service_unavailable', { message: 'The database is not answering.', headers: { 'retry-after': '1' } });
    }
    return { status: 'ok', database: deps.dialect };
  });

  await app.register(v1Plugin, { prefix: '/v1', deps });
  await app.register(managementPlugin, { prefix: '/v1/admin', deps });
  await app.register(dashboardApiPlugin, { prefix: '/dashboard/api', deps });
  await app.register(webAppPlugin, { config: deps.config });
  return app;
}
