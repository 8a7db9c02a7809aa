#!/usr/bin/env -S node --max-semi-space-size=4 --v8-pool-size=2
// The `bizora` command (and `npm start`). Runs dist/bizora.mjs, a bundle of src/ and the
// JavaScript it depends on that esbuild makes in about a second whenever src/ or the installed
// dependencies are newer than it, so a checkout needs no build step and the server runs plain
// JavaScript: no TypeScript loader in the process, and one script instead of some 1,300 modules
// (less memory, faster start; measured in bench/README.md).
//
// Node flags (here and in `npm start`; V8 reads them only when Node starts, so they cannot live in
// src/lib/memory.ts with the other tuning), measured in bench/README.md:
// --max-semi-space-size=4: V8's young generation otherwise grows to two 16 MB halves under load:
//   25 MB more resident memory, to save 3–5 % of CPU per request (step 12).
// --v8-pool-size=2: two threads for V8's background work (garbage collection, compilation)
//   instead of four, each with its own stack and malloc arena: 2–4 MB less at the peak, and no
//   slower, side by side (step 17). A heap of some 50 MB gains nothing from more helpers.
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'dist', 'bizora.mjs');

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const inputs = () =>
  Math.max(
    newest(join(root, 'src')),
    ...['package.json', 'package-lock.json', 'node_modules/.package-lock.json'].map((f) => mtime(join(root, f))),
  );
if (!existsSync(bundle) || statSync(bundle).mtimeMs < inputs()) {
  const { build } = await import('esbuild');
  // Written aside and renamed, so that concurrent invocations never run a half-written bundle.
  const tmp = `${bundle}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Native addons stay outside; so does pg's optional native binding, which is not installed.
    external: ['better-sqlite3', 'pg-native'],
    // Bundled CommonJS packages call require() for Node's own modules.
    banner: { js: "import { createRequire as __bizoraRequire } from 'node:module'; const require = __bizoraRequire(import.meta.url);" },
    outfile: tmp,
    logLevel: 'warning',
    // Without comments and whitespace, but with every name kept (stack traces stay readable):
    // V8 keeps a script's source and parses less of it; 8 MB less resident memory under load.
    minifyWhitespace: true,
    minifySyntax: true,
  });
  renameSync(tmp, bundle);
}
await import(pathToFileURL(bundle).href);
