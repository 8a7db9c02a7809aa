#!/usr/bin/env node
// The `bizora` command (and `npm start`). Runs dist/bizora.mjs, a bundle of src/ that esbuild
// makes in a fraction of a second whenever src/ is newer than it, so a checkout needs no build
// step and the server runs plain JavaScript: no TypeScript loader in the process (less memory,
// faster start; measured in bench/README.md).
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'dist', 'bizora.mjs');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (!existsSync(bundle) || statSync(bundle).mtimeMs < Math.max(newest(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs)) {
  const { build } = await import('esbuild');
  // Written aside and renamed, so that concurrent invocations never run a half-written bundle.
  const tmp = `${bundle}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: tmp,
    logLevel: 'warning',
  });
  renameSync(tmp, bundle);
}
await import(pathToFileURL(bundle).href);
