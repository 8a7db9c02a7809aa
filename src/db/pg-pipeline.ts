// Several parameterised statements in one round trip and one transaction. Each statement is
// sent as the extended query protocol's Parse (unless the connection has it prepared already),
// Bind and Execute, and the whole batch ends with a single Sync: PostgreSQL runs everything
// before a Sync as one implicit transaction, committed at the Sync if every statement succeeded
// and rolled back otherwise (the protocol's "Pipelining" section). That is what group commit
// needs: one round trip and one WAL flush for a batch, with values that are never part of the SQL.
// pg itself sends a Sync after every statement, so this is a query object of pg's own kind (a
// Submittable, as pg-cursor is), which pg hands the connection's messages to.
import type pg from 'pg';

export type PipelinedStatement = {
  text: string;
  values: readonly unknown[];
  /** Kept prepared on the connection under this name; unnamed statements are parsed each time. */
  name?: string | undefined;
};

/** A parameter in PostgreSQL's text format: only the types the ledger writes; anything else is a bug. */
function textValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw new TypeError(`not a ledger parameter: ${typeof v === 'number' ? v : typeof v}`);
}

/** The row count in a CommandComplete tag ("INSERT 0 1", "UPDATE 3", "SELECT 1"). */
const rowCount = (tag: string): number => Number(tag.slice(tag.lastIndexOf(' ') + 1)) || 0;

type Connection = {
  stream: { cork?: () => void; uncork?: () => void };
  parse(m: { name: string; text: string; types: number[] }): void;
  bind(m: { statement: string; values: (string | null)[] }): void;
  execute(m: { portal: string; rows: number }): void;
  sync(): void;
};

class Pipeline {
  /** Set before pg sees the query: pg's query_timeout wraps it. */
  callback: ((err: Error | null, counts?: number[]) => void) | undefined;
  private readonly counts: number[] = [];

  constructor(
    private readonly statements: readonly { name: string; text: string; values: (string | null)[] }[],
    private readonly prepared: Set<string> | undefined,
  ) {}

  submit(connection: Connection): null {
    connection.stream.cork?.();
    try {
      for (const s of this.statements) {
        if (!s.name || !this.prepared?.has(s.name)) {
          connection.parse({ name: s.name, text: s.text, types: [] });
          if (s.name) this.prepared?.add(s.name);
        }
        connection.bind({ statement: s.name, values: s.values });
        connection.execute({ portal: '', rows: 0 });
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleCommandComplete(msg: { text: string }): void {
    this.counts.push(rowCount(msg.text));
  }
  // pg calls this for an ErrorResponse (the server then skips to the Sync and rolls back), a
  // lost connection or query_timeout; and no more messages come to this query after it.
  handleError(err: Error): void {
    this.callback?.(err);
    this.callback = undefined;
  }
  handleReadyForQuery(): void {
    this.callback?.(null, this.counts);
    this.callback = undefined;
  }
  // Rows are not read: whether a statement wrote is its row count.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

/**
 * Runs the statements on `client` as one transaction: the number of rows each returned or
 * changed, or a rejection, and then none of them took effect. `prepared` records the names
 * parsed on this connection; a client whose pipeline failed must be released as broken, as
 * what it has prepared is then unknown.
 */
export function runPipeline(client: pg.PoolClient, statements: readonly PipelinedStatement[], prepared?: Set<string>): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // Every value is converted before anything is sent, so a bad one sends nothing (and rejects).
    const texts = statements.map((s) => ({ name: s.name ?? '', text: s.text, values: s.values.map(textValue) }));
    const pipeline = new Pipeline(texts, prepared);
    pipeline.callback = (err, counts) => (err ? reject(err) : resolve(counts ?? []));
    // pg's types know only its own query objects; a Submittable is its documented extension point.
    client.query(pipeline as unknown as pg.Submittable);
  });
}
