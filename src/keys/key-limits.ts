// A key's limits as every surface takes and shows them (the CLI, the dashboard, the management
// API, /v1/key): requests and tokens per minute, requests at once, a spend limit in cents per
// day, month or in total, and the models it may call. Checked here once; stored as columns of
// api_keys (the spend limit in micro-USD, the models as a JSON list).
import type { ApiKeyRow, SpendPeriod } from '../db/schema.ts';
import { ApiError } from '../errors.ts';
import { DAY_MS } from '../lib/durations.ts';
import { MICROS_PER_CENT } from '../lib/money.ts';

export const SPEND_PERIODS = ['day', 'month', 'total'] as const satisfies readonly SpendPeriod[];

/** A key's limits (null: none). */
export type KeyLimits = {
  rpm: number | null;
  tpm: number | null;
  max_concurrency: number | null;
  spend_limit_cents: number | null;
  spend_period: SpendPeriod | null;
  models: string[] | null;
};

/** The most any limit can be: beyond it a limit is no limit. */
export const MAX_LIMIT = 1_000_000_000;
/** The most models an allowlist names, and the longest model id in it. */
export const MAX_MODELS = 100;
const MAX_MODEL_ID = 200;

type LimitColumns = Pick<ApiKeyRow, 'rpm' | 'tpm' | 'max_concurrency' | 'spend_limit_micros' | 'spend_period' | 'models'>;

const invalid = (param: string, message: string) => new ApiError('invalid_request', { param, message });

function count(value: unknown, param: string): number | null {
  if (value === null) return null;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_LIMIT) {
    throw invalid(param, `${param} must be a whole number from 1 to ${MAX_LIMIT}, or null for none.`);
  }
  return value as number;
}

/**
 * The columns a change of limits sets: only the fields given (undefined: unchanged; null: none).
 * A spend limit without a period is a limit in total. Throws a 400 naming the field.
 */
export function limitColumns(change: Partial<KeyLimits>): Partial<LimitColumns> {
  const columns: Partial<LimitColumns> = {};
  if (change.rpm !== undefined) columns.rpm = count(change.rpm, 'rpm');
  if (change.tpm !== undefined) columns.tpm = count(change.tpm, 'tpm');
  if (change.max_concurrency !== undefined) columns.max_concurrency = count(change.max_concurrency, 'max_concurrency');
  if (change.spend_limit_cents !== undefined) {
    const cents = count(change.spend_limit_cents, 'spend_limit_cents');
    columns.spend_limit_micros = cents === null ? null : cents * MICROS_PER_CENT;
    if (cents === null) columns.spend_period = null;
  }
  // A period not given stays as it was; none at all is a limit in total.
  if (change.spend_period !== undefined && change.spend_period !== null && columns.spend_limit_micros !== null) {
    if (!SPEND_PERIODS.includes(change.spend_period))
      throw invalid('spend_period', `spend_period must be one of ${SPEND_PERIODS.join(', ')}.`);
    columns.spend_period = change.spend_period;
  }
  if (change.models !== undefined) {
    const models = change.models;
    if (models === null) columns.models = null;
    else {
      if (!Array.isArray(models) || models.length < 1 || models.length > MAX_MODELS) {
        throw invalid('models', `models must list 1 to ${MAX_MODELS} model ids, or be null for every model.`);
      }
      for (const m of models) {
        if (typeof m !== 'string' || m.length < 1 || m.length > MAX_MODEL_ID)
          throw invalid('models', `Each model id must be 1 to ${MAX_MODEL_ID} characters.`);
      }
      columns.models = JSON.stringify([...new Set(models)]);
    }
  }
  return columns;
}

/** A key's limits, as shown. */
export function limitsOf(row: LimitColumns): KeyLimits {
  return {
    rpm: row.rpm,
    tpm: row.tpm,
    max_concurrency: row.max_concurrency,
    spend_limit_cents: row.spend_limit_micros === null ? null : row.spend_limit_micros / MICROS_PER_CENT,
    spend_period: row.spend_limit_micros === null ? null : (row.spend_period ?? 'total'),
    models: allowedModels(row.models),
  };
}

// Allowlists parsed once per distinct list (a key row is read afresh on every request).
const parsed = new Map<string, string[]>();

function allowedModels(json: string | null): string[] | null {
  if (json === null) return null;
  let models = parsed.get(json);
  if (!models) {
    models = JSON.parse(json) as string[];
    if (parsed.size >= 1000) parsed.clear();
    parsed.set(json, models);
  }
  return models;
}

/** Whether the key may call the model. */
export const allowsModel = (row: Pick<ApiKeyRow, 'models'>, modelId: string): boolean =>
  row.models === null || (allowedModels(row.models) as string[]).includes(modelId);

/** When the spend period that contains `now` began (UTC), in Unix milliseconds; 0 for a limit in total. */
export function spendWindow(period: SpendPeriod | null, now: number): number {
  if (period === 'day') return now - (now % DAY_MS);
  if (period === 'month') {
    const d = new Date(now);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  return 0;
}

/** A key's spend limit for a hold (the ledger's KeySpendLimit): the limit, and when its current period began (0 for a total). */
export type SpendLimit = { keyId: string; limitMicros: number; window: number };

/** The key's spend limit for a hold placed at `now`, or null when it has none. */
export function keySpendLimit(row: Pick<ApiKeyRow, 'id' | 'spend_limit_micros' | 'spend_period'>, now: number): SpendLimit | null {
  if (row.spend_limit_micros === null) return null;
  return { keyId: row.id, limitMicros: row.spend_limit_micros, window: spendWindow(row.spend_period, now) };
}

const LIMIT_FIELDS = ['rpm', 'tpm', 'max_concurrency', 'spend_limit_cents', 'spend_period', 'models'] as const;

/** What a request body's limit fields ask (only those given), and its expiry (undefined: unchanged). */
export function limitsChange(body: Partial<KeyLimits> & { expires_at?: number | null }): {
  limits: Partial<KeyLimits>;
  expiresAt: number | null | undefined;
} {
  const limits: Partial<KeyLimits> = {};
  for (const field of LIMIT_FIELDS) if (body[field] !== undefined) (limits as Record<string, unknown>)[field] = body[field];
  return { limits, expiresAt: body.expires_at };
}
