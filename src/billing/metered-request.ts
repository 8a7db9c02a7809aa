// One billed request from hold to settlement. `open` holds the worst-case cost (or says what the
// balance could not cover: the caller answers it); `close` settles at the actual cost and writes the usage record in one transaction,
// exactly once, however many code paths (success, failure, client gone) try to close it.
// sk_test_ requests get a meter without a hold: recorded, never billed.
import type { ModelConfig } from '../config.ts';
import type { Hold, UsageStatus } from '../db/schema.ts';
import { keySpendLimit } from '../keys/key-limits.ts';
import type { AuthContext } from '../keys/verify.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { reserve, settle } from './ledger.ts';
import type { LedgerExecutor } from './ledger-executor.ts';
import type { OpenMeters } from './open-meters.ts';
import { costMicros, maxAffordableTokens } from './pricing.ts';

export type MeterContext = {
  auth: AuthContext;
  model: ModelConfig;
  backendKind: string;
  requestId: string;
  promptTokens: number;
  maxOutputTokens: number;
  stream: boolean;
  startedAt: number;
  /** Called once when the meter closes, with the tokens the request used (its rate-limit admission's finish). */
  release?: ((usedTokens: number) => void) | undefined;
  /** The route it came in by, and how long ago it arrived (ms), for the metrics. */
  route?: string;
  elapsedMs?: () => number;
};

export type MeterOutcome = {
  status: UsageStatus;
  httpStatus: number;
  promptTokens: number;
  completionTokens: number;
  /** False when nothing is to be charged (a backend failure before any output). */
  bill: boolean;
  finishReason?: string | null;
  errorCode?: string | null;
};

/**
 * Why a meter could not be opened: the available balance does not cover the worst case, or the
 * key's spend limit does not (what is left of it is then availableMicros).
 */
export type Refused = {
  ok: false;
  reason: 'account_balance' | 'key_spend_limit';
  availableMicros: number;
  /** What the request would have held. */
  holdMicros: number;
  /** The largest max_tokens the balance covers; null when output is free. */
  maxAffordableTokens: number | null;
};

export type MeterDeps = { ledger: LedgerExecutor; now: () => number; holdTtlMs: number; openMeters: OpenMeters; metrics?: Metrics };

export class Meter {
  private closing: Promise<number> | undefined;
  // Monotonic times (performance.now) of the backend call, its end and a stream's first item.
  private backendStart: number | null = null;
  private backendEnd: number | null = null;
  private firstItem: number | null = null;

  private constructor(
    private readonly deps: MeterDeps,
    readonly ctx: MeterContext,
    readonly hold: Hold | null,
    private readonly closed: () => void,
  ) {}

  static async open(deps: MeterDeps, ctx: MeterContext): Promise<{ ok: true; meter: Meter } | Refused> {
    // Open from before the hold is placed until it settles: a shutdown waits for it
    // (open-meters.ts), including a hold still being committed when the shutdown began.
    let closed: () => void = () => {};
    deps.openMeters.track(new Promise<void>((resolve) => (closed = resolve)));
    try {
      const opened = await Meter.hold(deps, ctx, closed);
      if (!opened.ok) closed();
      return opened;
    } catch (err) {
      closed();
      throw err;
    }
  }

  private static async hold(deps: MeterDeps, ctx: MeterContext, closed: () => void): Promise<{ ok: true; meter: Meter } | Refused> {
    if (ctx.auth.key.mode === 'test') return { ok: true, meter: new Meter(deps, ctx, null, closed) };
    const amount = costMicros(ctx.model.price, ctx.promptTokens, ctx.maxOutputTokens);
    if (amount === 0) return { ok: true, meter: new Meter(deps, ctx, null, closed) };
    const now = deps.now();
    const result = await deps.ledger.run((s) =>
      reserve(s, {
        accountId: ctx.auth.key.account_id,
        requestId: ctx.requestId,
        amountMicros: amount,
        now,
        ttlMs: deps.holdTtlMs,
        keySpend: keySpendLimit(ctx.auth.key, now),
      }),
    );
    if (!result.ok) {
      return {
        ok: false,
        reason: result.reason === 'key_spend_limit' ? 'key_spend_limit' : 'account_balance',
        availableMicros: result.availableMicros,
        holdMicros: amount,
        maxAffordableTokens: maxAffordableTokens(ctx.model.price, ctx.promptTokens, result.availableMicros),
      };
    }
    return { ok: true, meter: new Meter(deps, ctx, result.hold, closed) };
  }

  // The times are taken only for the metrics.
  /** The backend is being called now. */
  backendCalled(): void {
    if (this.deps.metrics) this.backendStart = performance.now();
  }
  /** The backend's answer has all arrived (a stream: its last item). */
  backendAnswered(): void {
    if (this.deps.metrics) this.backendEnd ??= performance.now();
  }
  /** A stream's first item has arrived. */
  firstChunk(): void {
    if (this.deps.metrics) this.firstItem ??= performance.now();
  }

  /** Settles (or records, for test keys) once; later calls return the first result. */
  close(outcome: MeterOutcome): Promise<number> {
    if (this.closing) return this.closing;
    const { release } = this.ctx;
    if (!release && !this.deps.metrics) {
      this.closing = this.settle(outcome).finally(this.closed);
      return this.closing;
    }
    const settling = performance.now();
    this.closing = this.settle(outcome).finally(() => {
      this.closed();
      release?.(outcome.promptTokens + outcome.completionTokens);
      this.report(outcome, settling);
    });
    return this.closing;
  }

  private report(o: MeterOutcome, settling: number): void {
    const { metrics } = this.deps;
    const { ctx } = this;
    if (!metrics || !ctx.elapsedMs) return;
    const now = performance.now();
    const total = ctx.elapsedMs() / 1000;
    metrics.modelRequest({
      route: ctx.route ?? 'unknown',
      model: ctx.model.id,
      mode: ctx.auth.key.mode,
      httpStatus: o.httpStatus,
      stream: ctx.stream,
      totalSeconds: total,
      backendSeconds: this.backendStart === null ? null : ((this.backendEnd ?? settling) - this.backendStart) / 1000,
      firstTokenSeconds: this.firstItem === null ? null : Math.max(0, total - (now - this.firstItem) / 1000),
      settleSeconds: (now - settling) / 1000,
    });
  }

  private async settle(o: MeterOutcome): Promise<number> {
    const { ctx } = this;
    const now = this.deps.now();
    const cost = o.bill && this.hold ? costMicros(ctx.model.price, o.promptTokens, o.completionTokens) : 0;
    const usage = {
      id: ctx.requestId,
      account_id: ctx.auth.key.account_id,
      key_id: ctx.auth.key.id,
      model: ctx.model.id,
      backend: ctx.backendKind,
      mode: ctx.auth.key.mode,
      stream: ctx.stream ? 1 : 0,
      status: o.status,
      http_status: o.httpStatus,
      finish_reason: o.finishReason ?? null,
      prompt_tokens: o.promptTokens,
      completion_tokens: o.completionTokens,
      cost_micros: 0,
      hold_micros: 0,
      error_code: o.errorCode ?? null,
      latency_ms: Math.max(0, now - ctx.startedAt),
      created_at: ctx.startedAt,
    };
    const hold = this.hold;
    if (!hold) {
      await this.deps.ledger.run((s) => s.insertUsage(usage));
      return 0;
    }
    const r = await this.deps.ledger.run((s) =>
      settle(s, {
        hold,
        costMicros: cost,
        now,
        close: cost > 0 ? 'settled' : 'released',
        usage,
        keySpend: keySpendLimit(ctx.auth.key, now),
      }),
    );
    return r.chargedMicros;
  }
}
