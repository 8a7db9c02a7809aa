// The only reader of process.env. Every setting is named, typed and checked here once; a bad
// value stops start-up with a message that names the variable (see loadConfig).
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const EnvSchema = z.object({
  BIZORA_HOST: z.string().min(1).default('127.0.0.1'),
  BIZORA_PORT: port.default(8080),
  BIZORA_DATABASE_URL: z
    .string()
    .regex(/^(sqlite:|postgres:\/\/|postgresql:\/\/)/, 'must start with sqlite: or postgres://')
    .default('sqlite:./data/bizora.db'),
  BIZORA_UPSTREAM_URL: z.url().optional(),
  BIZORA_UPSTREAM_API_KEY: z.string().optional(),
  BIZORA_UPSTREAM_MODEL: z.string().min(1).optional(),
  BIZORA_MODELS_FILE: z.string().min(1).optional(),
  BIZORA_BODY_LIMIT_BYTES: positiveInt.default(8 * 1024 * 1024),
  BIZORA_UPSTREAM_TIMEOUT_MS: positiveInt.default(120_000),
  BIZORA_HOLD_TTL_SECONDS: positiveInt.default(900),
  BIZORA_HOLD_SWEEP_SECONDS: positiveInt.default(30),
  BIZORA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BIZORA_SIGNUP_CREDIT_CENTS: z.coerce.number().int().min(0).default(0),
  BIZORA_PUBLIC_URL: z.url().optional(),
  BIZORA_COOKIE_SECURE: z.enum(['true', 'false', 'auto']).default('auto'),
  BIZORA_SESSION_DAYS: positiveInt.default(30),
  BIZORA_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).default(10),
  BIZORA_CLIENT_TIMEOUT_MS: positiveInt.default(30_000),
  BIZORA_DB_TIMEOUT_MS: positiveInt.default(5_000),
  BIZORA_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1_000),
  BIZORA_MAX_HEAP_USED_MB: z.coerce.number().int().min(0).optional(),
  BIZORA_TRUST_PROXY: z
    .string()
    .regex(/^(true|false|\d+|[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*)$/, 'must be true, false, a hop count or a list of proxy addresses')
    .default('false'),
  BIZORA_SIGNUP: z.enum(['open', 'closed']).default('open'),
  BIZORA_PG_PREPARED_STATEMENTS: z.enum(['on', 'off']).default('on'),
  BIZORA_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  BIZORA_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  BIZORA_LIMITS_ON_REDIS_FAILURE: z.enum(['open', 'closed']).default('open'),
  BIZORA_CORS_ORIGINS: z
    .string()
    .regex(
      /^\s*(\*|https?:\/\/[^\s,/]+(\s*,\s*https?:\/\/[^\s,/]+)*)?\s*$/,
      'must be *, or origins such as https://app.example.com separated by commas',
    )
    .default(''),
});

/**
 * How long a request may outlive its upstream deadline: time to write what is left to the client
 * and settle. A request is ended (and settled with what was produced) at upstream timeout + this.
 */
export const REQUEST_GRACE_MS = 5_000;

/** Price of a model in integer micro-USD. */
const PriceSchema = z.object({
  input_per_million_micros: z.number().int().min(0),
  output_per_million_micros: z.number().int().min(0),
  request_micros: z.number().int().min(0).default(0),
});

const ModelSchema = z.object({
  id: z.string().min(1),
  /** chat: /v1/chat/completions; embedding: /v1/embeddings. */
  kind: z.enum(['chat', 'embedding']).default('chat'),
  backend: z.enum(['simulator', 'openai-compatible']),
  upstream_url: z.url().optional(),
  upstream_api_key: z.string().optional(),
  upstream_model: z.string().min(1).optional(),
  max_output_tokens: positiveInt.default(4096),
  context_window: positiveInt.default(128_000),
  /**
   * The field an output limit goes upstream in when the client set none: OpenAI's current one,
   * which its reasoning models require, or max_tokens for upstreams that know only that.
   */
  max_tokens_field: z.enum(['max_completion_tokens', 'max_tokens']).default('max_completion_tokens'),
  /**
   * The upstream serves the Responses API itself (OpenAI does): /v1/responses is passed on to it
   * as the client sent it (its built-in tools and reasoning work), not made into chat completions.
   */
  responses_api: z.boolean().default(false),
  /** An embedding model's vector length (and the most a request's `dimensions` may ask for). */
  dimensions: positiveInt.default(1536),
  price: PriceSchema,
});

const ModelsFileSchema = z.object({ models: z.array(ModelSchema).min(1) });

export type ModelPrice = z.infer<typeof PriceSchema>;
export type ModelConfig = Readonly<z.infer<typeof ModelSchema>>;

/**
 * The default price of `bizora`: $1.00 per million input tokens, $3.00 per million output
 * tokens, no per-request fee. Documented in the README.
 */
export const DEFAULT_PRICE: ModelPrice = {
  input_per_million_micros: 1_000_000,
  output_per_million_micros: 3_000_000,
  request_micros: 0,
};

export type Config = Readonly<{
  host: string;
  port: number;
  databaseUrl: string;
  bodyLimitBytes: number;
  upstreamTimeoutMs: number;
  holdTtlSeconds: number;
  holdSweepSeconds: number;
  logLevel: z.infer<typeof EnvSchema>['BIZORA_LOG_LEVEL'];
  signupCreditCents: number;
  publicUrl: string | undefined;
  /** Secure cookies: on when the public URL is https (auto), or as set. */
  cookieSecure: boolean;
  /** auto without a public URL: Secure when the request itself came over https (X-Forwarded-Proto behind a trusted proxy). */
  cookieSecurePerRequest: boolean;
  sessionTtlMs: number;
  /** How long a shutdown lets in-flight requests finish before it ends them. */
  shutdownGraceMs: number;
  /** Deadline for reading a request (headers and body) and for each wait on a client that stopped reading. */
  clientTimeoutMs: number;
  /** Deadline for connecting to the database and for each statement. */
  dbTimeoutMs: number;
  /** Load shedding: new requests get 503 while the event loop lags more than this (0: off). */
  maxEventLoopDelayMs: number;
  /** Load shedding: new requests get 503 while the heap uses more than this (0: off). */
  maxHeapUsedBytes: number;
  /** Fastify's trustProxy: false, true, a hop count, or the proxies' addresses. */
  trustProxy: boolean | number | string[];
  /** open: anyone may sign up in the dashboard; closed: only the CLI or an administrator creates accounts. */
  signup: 'open' | 'closed';
  /**
   * Statements kept prepared on PostgreSQL connections (the ledger's batches, the key look-up);
   * off for a pooler in transaction mode (PgBouncer), which cannot keep them.
   */
  pgPreparedStatements: boolean;
  /** GET /metrics is served (to this bearer token) only when set. */
  metricsToken: string | undefined;
  /** Keys' rate limits are shared through this Redis when set; else counted in each process. */
  redisUrl: string | undefined;
  limitsOnRedisFailure: 'open' | 'closed';
  /** Browser origins allowed to call /v1 (with an API key; never with cookies): none, some, or '*' for any. */
  corsOrigins: '*' | readonly string[];
  models: readonly ModelConfig[];
}>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

function modelsFromEnv(env: z.infer<typeof EnvSchema>): ModelConfig[] {
  if (env.BIZORA_MODELS_FILE) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(env.BIZORA_MODELS_FILE, 'utf8'));
    } catch (err) {
      throw new ConfigError([`BIZORA_MODELS_FILE: cannot read ${env.BIZORA_MODELS_FILE}: ${(err as Error).message}`]);
    }
    const parsed = ModelsFileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError(parsed.error.issues.map((i) => `BIZORA_MODELS_FILE ${i.path.join('.')}: ${i.message}`));
    }
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const m of parsed.data.models) {
      if (seen.has(m.id)) problems.push(`BIZORA_MODELS_FILE: model ${m.id} is listed twice`);
      seen.add(m.id);
      if (m.backend === 'openai-compatible' && !m.upstream_url && !env.BIZORA_UPSTREAM_URL) {
        problems.push(`BIZORA_MODELS_FILE: model ${m.id} uses openai-compatible but has no upstream_url`);
      }
      if (m.responses_api && (m.backend !== 'openai-compatible' || m.kind !== 'chat')) {
        problems.push(
          `BIZORA_MODELS_FILE: model ${m.id} has responses_api, which only a chat model with an openai-compatible upstream can have`,
        );
      }
    }
    if (problems.length) throw new ConfigError(problems);
    // Models without their own upstream settings inherit the BIZORA_UPSTREAM_* ones.
    return parsed.data.models.map((m) => ({
      ...m,
      ...(m.upstream_url ? {} : env.BIZORA_UPSTREAM_URL ? { upstream_url: env.BIZORA_UPSTREAM_URL } : {}),
      ...((m.upstream_api_key ?? env.BIZORA_UPSTREAM_API_KEY)
        ? { upstream_api_key: (m.upstream_api_key ?? env.BIZORA_UPSTREAM_API_KEY) as string }
        : {}),
    }));
  }
  const upstream = env.BIZORA_UPSTREAM_URL;
  return [
    {
      id: 'bizora',
      backend: upstream ? 'openai-compatible' : 'simulator',
      ...(upstream ? { upstream_url: upstream } : {}),
      ...(env.BIZORA_UPSTREAM_API_KEY ? { upstream_api_key: env.BIZORA_UPSTREAM_API_KEY } : {}),
      ...(env.BIZORA_UPSTREAM_MODEL ? { upstream_model: env.BIZORA_UPSTREAM_MODEL } : {}),
      max_output_tokens: 4096,
      context_window: 128_000,
      max_tokens_field: 'max_completion_tokens',
      responses_api: false,
      dimensions: 1536,
      kind: 'chat',
      price: DEFAULT_PRICE,
    },
    // Served by the simulator (deterministic unit vectors), so that RAG stacks work out of the box.
    {
      id: 'bizora-embed',
      kind: 'embedding',
      backend: 'simulator',
      max_output_tokens: 1,
      context_window: 8192,
      max_tokens_field: 'max_completion_tokens',
      responses_api: false,
      dimensions: 1536,
      price: { input_per_million_micros: 20_000, output_per_million_micros: 0, request_micros: 0 },
    },
  ];
}

function trustProxyOf(v: string): boolean | number | string[] {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(',').map((a) => a.trim());
}

/** Reads and checks the environment; throws ConfigError listing every problem. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const env = parsed.data;
  // A request lives at most upstream timeout + grace, and its settlement then takes at most one
  // database deadline. A hold that could expire before that would let the sweeper hand the money
  // back while its request is still running.
  const requestBudgetMs = env.BIZORA_UPSTREAM_TIMEOUT_MS + REQUEST_GRACE_MS + env.BIZORA_DB_TIMEOUT_MS;
  if (env.BIZORA_HOLD_TTL_SECONDS * 1000 <= requestBudgetMs) {
    throw new ConfigError([
      `BIZORA_HOLD_TTL_SECONDS (${env.BIZORA_HOLD_TTL_SECONDS}) must be longer than a request can live: BIZORA_UPSTREAM_TIMEOUT_MS (${env.BIZORA_UPSTREAM_TIMEOUT_MS} ms) + ${REQUEST_GRACE_MS} ms + BIZORA_DB_TIMEOUT_MS (${env.BIZORA_DB_TIMEOUT_MS} ms)`,
    ]);
  }
  return Object.freeze({
    host: env.BIZORA_HOST,
    port: env.BIZORA_PORT,
    databaseUrl: env.BIZORA_DATABASE_URL,
    bodyLimitBytes: env.BIZORA_BODY_LIMIT_BYTES,
    upstreamTimeoutMs: env.BIZORA_UPSTREAM_TIMEOUT_MS,
    holdTtlSeconds: env.BIZORA_HOLD_TTL_SECONDS,
    holdSweepSeconds: env.BIZORA_HOLD_SWEEP_SECONDS,
    logLevel: env.BIZORA_LOG_LEVEL,
    signupCreditCents: env.BIZORA_SIGNUP_CREDIT_CENTS,
    publicUrl: env.BIZORA_PUBLIC_URL,
    cookieSecure: env.BIZORA_COOKIE_SECURE === 'auto' ? !!env.BIZORA_PUBLIC_URL?.startsWith('https:') : env.BIZORA_COOKIE_SECURE === 'true',
    cookieSecurePerRequest: env.BIZORA_COOKIE_SECURE === 'auto' && !env.BIZORA_PUBLIC_URL,
    sessionTtlMs: env.BIZORA_SESSION_DAYS * 24 * 3600 * 1000,
    shutdownGraceMs: env.BIZORA_SHUTDOWN_GRACE_SECONDS * 1000,
    clientTimeoutMs: env.BIZORA_CLIENT_TIMEOUT_MS,
    dbTimeoutMs: env.BIZORA_DB_TIMEOUT_MS,
    maxEventLoopDelayMs: env.BIZORA_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes:
      env.BIZORA_MAX_HEAP_USED_MB !== undefined
        ? env.BIZORA_MAX_HEAP_USED_MB * 1024 * 1024
        : // 90 % of the heap V8 will grow to: past that, garbage collection takes over the process.
          Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    trustProxy: trustProxyOf(env.BIZORA_TRUST_PROXY),
    signup: env.BIZORA_SIGNUP,
    pgPreparedStatements: env.BIZORA_PG_PREPARED_STATEMENTS === 'on',
    metricsToken: env.BIZORA_METRICS_TOKEN,
    redisUrl: env.BIZORA_REDIS_URL,
    limitsOnRedisFailure: env.BIZORA_LIMITS_ON_REDIS_FAILURE,
    corsOrigins:
      env.BIZORA_CORS_ORIGINS.trim() === '*'
        ? '*'
        : Object.freeze(
            env.BIZORA_CORS_ORIGINS.split(',')
              .map((o) => o.trim())
              .filter(Boolean),
          ),
    models: Object.freeze(modelsFromEnv(env).map((m) => Object.freeze(m))),
  });
}
