// One of `npm test`'s worker processes (test/run.ts starts them). It asks the runner for a test
// file, imports it, and asks for the next only once that file's tests have all run, so the
// files spread over the workers by how long they actually take. Loading the server's modules
// through tsx costs ~3 s of CPU; a worker pays it once, not once per file.
//
// Root-level tests run one after another, in the order they were declared. After a file is
// imported, a marker test is declared behind its tests: when the marker runs, the file is done,
// and the marker loads the next file before it returns, so the root never runs out of tests
// while files are left. The import runs outside the marker's async context; inside it, the
// file's tests would become the marker's subtests.
import { AsyncResource } from 'node:async_hooks';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { MARKER } from './shard-marker.ts';

const outside = new AsyncResource('test-shard');

function nextFile(): Promise<string | null> {
  return new Promise((resolve) => {
    process.once('message', (m: { file: string | null }) => resolve(m.file));
    process.send?.({ next: true });
  });
}

async function load(): Promise<void> {
  const file = await nextFile();
  if (file === null) {
    process.disconnect?.();
    return;
  }
  const started = performance.now();
  try {
    await import(pathToFileURL(file).href);
  } catch (err) {
    test(`${file} loads`, () => {
      throw err;
    });
  }
  test(`${file} ${MARKER}`, () => {
    // BIZORA_TEST_TIMES=1: how long each file took, on standard error (to find what to speed up).
    if (process.env.BIZORA_TEST_TIMES === '1') process.stderr.write(`# ${((performance.now() - started) / 1000).toFixed(1)} s ${file}\n`);
    return outside.runInAsyncScope(load);
  });
}

await load();
