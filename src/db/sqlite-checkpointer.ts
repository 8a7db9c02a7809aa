// WAL checkpoints for the server's SQLite database, on a worker thread with its own connection,
// so that no request waits for one (bench/README.md, step 18). A checkpoint copies the WAL back
// into the database file and fsyncs both; on the connection that commits, SQLite runs it inside
// the COMMIT that crosses the threshold, and that request waits for the fsyncs. Here the main
// connection does not checkpoint by itself (wal_autocheckpoint = 0); the worker runs a PASSIVE
// checkpoint on a timer, which never waits for, nor blocks, the main connection.
//
// The WAL starts again from its first frame only when a write begins while every frame is back
// in the database file. Under steady load, commits land while the worker's checkpoint runs, so
// that never happens by itself and the file grows without end. So once the WAL holds
// `restartFrames`, the worker catches up and then asks the main connection to run one PASSIVE
// checkpoint itself: it copies and syncs only the frames committed since, and the next write
// starts the WAL over. Only openDatabase (src/db/connection.ts) starts one.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

export type CheckpointResult = {
  /** Frames in the WAL when the checkpoint ran. */
  log: number;
  /** Of those, how many are now in the database file. */
  checkpointed: number;
  /** 1 when another connection's lock stopped the checkpoint from finishing; it is tried again. */
  busy: number;
};

export type CheckpointerOptions = {
  /** How often the worker checkpoints. */
  intervalMs?: number;
  /** WAL frames after which the main connection is asked to let the WAL start over. */
  restartFrames?: number;
  /** wal_autocheckpoint for the main connection should the worker fail. */
  inlinePages: number;
};

type FromWorker = { result: CheckpointResult } | { restart: true };

// The worker's whole program, plain CommonJS evaluated by Node: the server runs as one bundled
// file (bin/bizora.js), so a worker cannot be given a module path of its own, and it needs
// nothing of ours but this. busy_timeout 0: a checkpoint never waits for a lock; one that cannot
// finish now is finished by the next. Errors are rethrown as plain Errors: a SqliteError reaches
// the main thread as its code alone.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const plain = (f) => {
  try { return f(); } catch (e) { throw new Error(\`\${e.code ?? e.name}: \${e.message}\`); }
};
const db = plain(() => new Database(workerData.path, { fileMustExist: true }));
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');
const checkpoint = () => plain(() => db.pragma('wal_checkpoint(PASSIVE)')[0]);
const timer = setInterval(() => {
  let r = checkpoint();
  if (r.busy !== 0 || r.log < workerData.restartFrames) return;
  // First copy what was committed during that checkpoint, and during the next, so that the
  // main connection's share is a few dozen frames.
  for (let i = 0; i < 3; i++) {
    const before = r.log;
    r = checkpoint();
    if (r.busy !== 0 || r.log - before < 64) break;
  }
  parentPort.postMessage({ restart: true });
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'checkpoint') parentPort.postMessage({ result: checkpoint() });
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
  /** Times the main connection let the WAL start over (tests read it). */
  restarts = 0;

  constructor(main: SQLite.Database, opts: CheckpointerOptions) {
    main.pragma('wal_autocheckpoint = 0');
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, path: main.name, intervalMs: opts.intervalMs ?? 100, restartFrames: opts.restartFrames ?? 4000 },
      // A few MB of JavaScript at most; the limits keep V8 from reserving more for it.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      stdout: false,
      stderr: false,
    });
    // The worker must not keep the process alive; the server stops it on shutdown (close()).
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => {
      if ('result' in m) this.waiting.shift()?.resolve(m.result);
      else if (main.open) {
        // The frames committed since the worker's checkpoint: a few, so two short fsyncs.
        const r = main.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[];
        if (r[0]?.busy === 0) this.restarts++;
      }
    });
    const fail = (err: unknown) => {
      for (const w of this.waiting.splice(0)) w.reject(err);
      if (this.gone !== undefined) return;
      this.gone = err;
      if (this.stopping || !main.open) return;
      // Never let the WAL grow without end: the main connection checkpoints by itself again.
      main.pragma(`wal_autocheckpoint = ${opts.inlinePages}`);
      process.emitWarning(`SQLite checkpoint worker failed (${(err as Error)?.message}); checkpoints run inline again`);
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
