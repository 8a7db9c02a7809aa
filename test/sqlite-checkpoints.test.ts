// SQLite WAL checkpoints off the request path: with `checkpoints: 'worker'` (the server's
// setting) the connection that commits never copies the WAL back into the database file; a
// worker thread with its own connection does, and the WAL still stays small. What a checkpoint
// did is read from the WAL index (the -shm file: the last frame written and how many frames are
// back in the database file, https://www.sqlite.org/walformat.html).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import SQLiteDriver from 'better-sqlite3';
import { openDatabase } from '../src/db/connection.ts';
import { SqliteCheckpointer } from '../src/db/sqlite-checkpointer.ts';

const dir = mkdtempSync(join(tmpdir(), 'bizora-checkpoints-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `db-${++n}.sqlite`);

/** mxFrame: frames in the WAL; nBackfill: of those, how many a checkpoint has copied back. */
function walIndex(path: string): { mxFrame: number; nBackfill: number } {
  const shm = readFileSync(`${path}-shm`);
  return { mxFrame: shm.readUInt32LE(16), nBackfill: shm.readUInt32LE(96) };
}

/** Commits `pages` pages of new rows, `perCommit` pages at a time. */
function write(sqlite: SQLiteDriver.Database, pages: number, perCommit = pages): void {
  sqlite.exec('CREATE TABLE IF NOT EXISTS filler (b BLOB)');
  const insert = sqlite.prepare('INSERT INTO filler (b) VALUES (randomblob(3500))');
  const commit = sqlite.transaction((k: number) => {
    for (let i = 0; i < k; i++) insert.run();
  });
  for (let done = 0; done < pages; done += perCommit) commit(Math.min(perCommit, pages - done));
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SQLite checkpoints', () => {
  test('inline (the default), the COMMIT that crosses 4,000 WAL pages copies them back itself', async () => {
    const path = freshPath();
    const database = openDatabase(`sqlite:${path}`);
    assert.equal(database.dialect, 'sqlite');
    if (database.dialect !== 'sqlite') return;
    write(database.sqlite, 4500);
    const wal = walIndex(path);
    assert.ok(wal.mxFrame >= 4500, `WAL frames ${wal.mxFrame}`);
    assert.equal(wal.nBackfill, wal.mxFrame);
    await database.close();
  });

  test('on a worker, the committing connection never checkpoints, and the worker copies every frame back', async () => {
    const path = freshPath();
    const database = openDatabase(`sqlite:${path}`, { checkpoints: 'worker' });
    assert.equal(database.dialect, 'sqlite');
    if (database.dialect !== 'sqlite') return;
    assert.equal(database.sqlite.pragma('wal_autocheckpoint', { simple: true }), 0);
    assert.ok(database.checkpointer);
    // One transaction: the worker's timer cannot copy frames that are not committed yet.
    write(database.sqlite, 4500);
    const before = walIndex(path);
    assert.ok(before.mxFrame >= 4500, `WAL frames ${before.mxFrame}`);
    assert.equal(before.nBackfill, 0, 'the COMMIT checkpointed on the main connection');
    const r = await database.checkpointer.checkpoint();
    assert.equal(r.busy, 0);
    assert.equal(r.checkpointed, r.log);
    await until('the frames to be back in the database file', () => walIndex(path).nBackfill === walIndex(path).mxFrame);
    assert.deepEqual(database.sqlite.prepare('SELECT count(*) AS n FROM filler').get(), { n: 4500 });
    await database.close();
  });

  test('under commits that never pause, the WAL still starts over and stays small', async () => {
    const path = freshPath();
    const sqlite = new SQLiteDriver(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    const checkpointer = new SqliteCheckpointer(sqlite, { intervalMs: 10, restartFrames: 300, inlinePages: 4000 });
    await checkpointer.checkpoint(); // the worker is up
    // Small commits back to back while the worker checkpoints beside them, yielding to the event
    // loop only briefly, as a busy server does. Count the frames written, and the most the WAL held.
    const started = Date.now();
    let written = 0;
    let most = 0;
    let last = walIndex(path).mxFrame;
    while (written < 4000 || checkpointer.restarts < 3) {
      if (Date.now() - started > 5000) break;
      write(sqlite, 10, 1);
      const now = walIndex(path).mxFrame;
      written += now >= last ? now - last : now;
      last = now;
      most = Math.max(most, now);
      await new Promise((r) => setImmediate(r));
    }
    await checkpointer.stop();
    sqlite.close();
    assert.ok(checkpointer.restarts >= 3, `the WAL started over ${checkpointer.restarts} times`);
    // Without restarts the WAL would hold every frame written.
    assert.ok(most < written / 2, `the WAL held up to ${most} of the ${written} frames written`);
  });

  test('a worker that fails hands checkpoints back to the committing connection', async () => {
    const path = freshPath();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const database = openDatabase(`sqlite:${path}`, { checkpoints: 'worker' });
    if (database.dialect !== 'sqlite') throw new Error('expected SQLite');
    // The worker opens the file only after it has started; gone by then, it fails to open it.
    unlinkSync(path);
    await until('checkpoints to be inline again', () => database.sqlite.pragma('wal_autocheckpoint', { simple: true }) === 4000);
    await until('the warning', () => warnings.some((w) => /checkpoint worker failed \(SQLITE_CANTOPEN/.test(w)));
    await assert.rejects(database.checkpointer?.checkpoint() ?? Promise.resolve(), /SQLITE_CANTOPEN/);
    process.off('warning', onWarning);
    await database.close();
  });

  test('stop() ends the thread and closes its connection, so the last close removes the WAL', async () => {
    const path = freshPath();
    const database = openDatabase(`sqlite:${path}`, { checkpoints: 'worker' });
    if (database.dialect !== 'sqlite') throw new Error('expected SQLite');
    write(database.sqlite, 50);
    await database.checkpointer?.checkpoint();
    await database.close();
    assert.throws(() => statSync(`${path}-wal`), /ENOENT/);
  });
});
