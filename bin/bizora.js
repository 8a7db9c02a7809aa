#!/usr/bin/env -S node --max-semi-space-size=4 --v8-pool-size=2 --heap-growing-percent=10 --liftoff-only --expose-gc
// The `bizora` command (and `npm start`): runs the build in dist/server, which `npm run build`
// makes (`npm start` and `npm test` build first when it is missing or older than the sources).
// It never builds anything itself: nothing writes into the package at run time but ./data.
//
// Node flags (here and in `npm start`; V8 reads them only when Node starts), measured in
// bench/README.md; the heap flags are explained in src/lib/memory.ts:
// --max-semi-space-size=4: V8's young generation otherwise grows to two 16 MB halves under load:
//   25 MB more resident memory, to save 3–5 % of CPU per request (step 12).
// --v8-pool-size=2: two threads for V8's background work (garbage collection, compilation)
//   instead of four, each with its own stack and malloc arena: 2–4 MB less at the peak, and no
//   slower, side by side (step 17). A heap of some 50 MB gains nothing from more helpers.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const entry = fileURLToPath(new URL('../dist/server/bizora.mjs', import.meta.url));
if (!existsSync(entry)) {
  console.error('bizora is not built: run `npm run build` (or `npm start`, which builds first).');
  process.exit(2);
}
await import(pathToFileURL(entry).href);
