// WAL checkpoints for the server's SQLite database, on a worker thread with its own connection,
// so that no request waits for one (bench/README.md, step 18). A checkpoint copies the WAL back
// into the database file and fsyncs both; on the connection that commits, SQLite runs it inside
// the COMMIT that crosses the threshold, and that request waits for the fsyncs. Here the main
// connection never checkpoints (wal_autocheckpoint = 0) and the worker runs a PASSIVE checkpoint
// on a timer: PASSIVE never waits for, nor blocks, the main connection's readers and writer.
// Only openDatabase (src/db/connection.ts) starts one, when asked to.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export type CheckpointResult = {
  /** Frames in the WAL when the checkpoint ran. */
  log: number;
  /** Of those, how many are now in the database file (all of them: the WAL restarts at its next write). */
  checkpointed: number;
  /** 1 when another connection's lock stopped the checkpoint from finishing; it is tried again. */
  busy: number;
};

export type CheckpointerOptions = {
  /** How often the worker checkpoints. */
  intervalMs?: number;
  /** The worker failed or stopped by itself: the caller turns checkpoints on the main connection back on. */
  onFailure: (err: unknown) => void;
};

// The worker's whole program, plain CommonJS evaluated by Node: the server runs as one bundled
// file (bin/bizora.js), so a worker cannot be given a module path of its own, and it needs
// nothing of ours but this. busy_timeout 0: a checkpoint never waits for a lock; if one cannot
// finish now, the next tick (or the immediate retry) does it. The retry: frames committed while
// a checkpoint ran are left for it, and the WAL restarts from its start only once all of its
// frames are in the database file, so one short second pass usually lets it restart. Errors are
// rethrown as plain Errors: a SqliteError reaches the main thread as its code alone.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const plain = (f) => {
  try { return f(); } catch (e) { throw new Error(\`\${e.code ?? e.name}: \${e.message}\`); }
};
const db = plain(() => new Database(workerData.path, { fileMustExist: true }));
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');
const checkpoint = () => plain(() => {
  let r = db.pragma('wal_checkpoint(PASSIVE)')[0];
  if (r.log > r.checkpointed && r.busy === 0) r = db.pragma('wal_checkpoint(PASSIVE)')[0];
  return r;
});
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'checkpoint') parentPort.postMessage(checkpoint());
  else if (m === 'stop') {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

export class SqliteCheckpointer {
  private readonly worker: Worker;
  private readonly waiting: Array<{ resolve: (r: CheckpointResult) => void; reject: (e: unknown) => void }> = [];
  private stopping = false;
  private gone: unknown;
  private readonly exited: Promise<void>;

  constructor(path: string, opts: CheckpointerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, path, intervalMs: opts.intervalMs ?? 100 },
      // A few MB of JavaScript at most; the limits keep V8 from reserving more for it.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      stdout: false,
      stderr: false,
    });
    // The worker must not keep the process alive; the server stops it on shutdown (close()).
    this.worker.unref();
    this.worker.on('message', (r: CheckpointResult) => this.waiting.shift()?.resolve(r));
    const fail = (err: unknown) => {
      for (const w of this.waiting.splice(0)) w.reject(err);
      if (this.gone !== undefined) return;
      this.gone = err;
      if (!this.stopping) opts.onFailure(err);
    };
    this.worker.on('error', fail);
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        fail(new Error(`the checkpoint worker exited (code ${code})`));
        resolve();
      });
    });
  }

  /** Runs a checkpoint now (on the worker) and says how far it got. */
  checkpoint(): Promise<CheckpointResult> {
    return new Promise((resolve, reject) => {
      if (this.gone !== undefined) return reject(this.gone);
      this.waiting.push({ resolve, reject });
      this.worker.postMessage('checkpoint');
    });
  }

  /** Stops the timer and closes the worker's connection; resolves when the thread is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.worker.postMessage('stop');
    const deadline = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(deadline);
  }
}
