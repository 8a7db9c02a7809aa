// What the server counts for Prometheus (prom-client, one registry per server): requests by
// route, model, status and key mode; time split into the gateway's own and the backend's; time
// to the first token of a stream; settlements and how long they take; rate-limit refusals by
// limit; open holds and the micro-USD they hold; the database pool; Node's own (event-loop lag,
// heap, GC). Served at GET /metrics only when BIZORA_METRICS_TOKEN is set (routes.ts).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/connection.ts';

/** How one model request went, reported when its meter closes. */
export type ModelRequestReport = {
  route: string;
  model: string;
  mode: 'live' | 'test';
  httpStatus: number;
  stream: boolean;
  /** From the request's arrival to its meter closing. */
  totalSeconds: number;
  /** From the backend call to the end of its answer; null when the backend was never called. */
  backendSeconds: number | null;
  /** From the request's arrival to the first streamed item. */
  firstTokenSeconds: number | null;
  settleSeconds: number;
};

/** Why a request was refused before it reached its backend. */
export type RefusedBy = 'requests' | 'tokens' | 'concurrency' | 'key_spend_limit' | 'account_balance' | 'model';

// Gateway overhead is a few milliseconds; backends take up to minutes.
const FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const SLOW = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'bizora_model_requests_total',
    help: 'Model requests, by route, model, HTTP status and key mode',
    labelNames: ['route', 'model', 'status', 'mode', 'stream'] as const,
    registers: [this.registry],
  });
  private readonly overhead = new Histogram({
    name: 'bizora_gateway_overhead_seconds',
    help: "A model request's time outside its backend call: authentication, counting, the hold, the settlement",
    labelNames: ['route'] as const,
    buckets: FAST,
    registers: [this.registry],
  });
  private readonly backend = new Histogram({
    name: 'bizora_backend_duration_seconds',
    help: "The backend call, to the end of its answer (a stream's last chunk)",
    labelNames: ['model', 'stream'] as const,
    buckets: SLOW,
    registers: [this.registry],
  });
  private readonly firstToken = new Histogram({
    name: 'bizora_time_to_first_token_seconds',
    help: "A stream's time from its request's arrival to its first chunk",
    labelNames: ['model'] as const,
    buckets: SLOW,
    registers: [this.registry],
  });
  private readonly settlements = new Histogram({
    name: 'bizora_settlement_duration_seconds',
    help: 'Settling a request (the ledger transaction that bills it and writes its usage record)',
    buckets: FAST,
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: 'bizora_refused_requests_total',
    help: 'Requests refused before their backend by a limit: requests, tokens, concurrency, key_spend_limit, account_balance, model',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly http = new Counter({
    name: 'bizora_http_requests_total',
    help: 'Every HTTP answer, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  constructor(database: Database) {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    const { db } = database;
    new Gauge({
      name: 'bizora_open_holds',
      help: 'Holds open now (requests in flight, on every instance of this database)',
      registers: [this.registry],
      async collect() {
        const r = await db
          .selectFrom('holds')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', '=', 'open')
          .executeTakeFirst();
        this.set(Number(r?.n ?? 0));
      },
    });
    new Gauge({
      name: 'bizora_held_micros',
      help: 'Micro-USD held by open holds',
      registers: [this.registry],
      async collect() {
        const r = await db
          .selectFrom('accounts')
          .select((eb) => eb.fn.sum<number>('held_micros').as('held'))
          .executeTakeFirst();
        this.set(Number(r?.held ?? 0));
      },
    });
    if (database.dialect === 'postgres') {
      const { pool } = database;
      const gauge = (name: string, help: string, read: () => number) =>
        new Gauge({
          name,
          help,
          registers: [this.registry],
          collect() {
            this.set(read());
          },
        });
      gauge('bizora_db_pool_connections', 'PostgreSQL connections open in the pool', () => pool.totalCount);
      gauge('bizora_db_pool_idle', 'PostgreSQL connections idle in the pool', () => pool.idleCount);
      gauge('bizora_db_pool_waiting', 'Queries waiting for a pool connection', () => pool.waitingCount);
    }
  }

  modelRequest(r: ModelRequestReport): void {
    this.requests.inc({ route: r.route, model: r.model, status: String(r.httpStatus), mode: r.mode, stream: String(r.stream) });
    this.overhead.observe({ route: r.route }, Math.max(0, r.totalSeconds - (r.backendSeconds ?? 0)));
    if (r.backendSeconds !== null) this.backend.observe({ model: r.model, stream: String(r.stream) }, r.backendSeconds);
    if (r.firstTokenSeconds !== null) this.firstToken.observe({ model: r.model }, r.firstTokenSeconds);
    this.settlements.observe(r.settleSeconds);
  }

  refused(by: RefusedBy): void {
    this.refusals.inc({ limit: by });
  }

  httpAnswer(route: string, method: string, status: number): void {
    this.http.inc({ route, method, status: String(status) });
  }
}
