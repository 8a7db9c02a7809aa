#!/usr/bin/env node
// `npm run build`: the server (src/, bundled by esbuild) into dist/server and the dashboard
// (web/, built by Vite) into dist/web. `--if-stale` builds only what is missing or older than
// its sources (what `npm start` and `npm test` run first, so a fresh clone needs no build step).
// Nothing else writes into the package: the server and the CLI only ever run what is here.
//
// The server bundle: one ESM entry (the `bizora` command) with code splitting, so that a CLI
// command does not parse the HTTP server it never starts (Fastify, undici, the tokenizer); the
// JavaScript it depends on inside, so the server runs plain JavaScript from a few files instead
// of some 1,300 modules through a TypeScript loader (less memory, faster start; bench/README.md).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ifStale = process.argv.includes('--if-stale');
const quiet = process.argv.includes('--quiet');
const say = (msg) => quiet || console.log(msg);

const SERVER = join(root, 'dist', 'server');
const WEB = join(root, 'dist', 'web');
// Written last by each build: a build that was interrupted is never taken for a finished one.
const STAMP = '.built';

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
function newest(dir, skip = new Set()) {
  // A deployment without the sources (dist/ copied in) has nothing to rebuild from.
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(e.name)) continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p, skip) : statSync(p).mtimeMs);
  }
  return t;
}
// The installed dependencies count too: the bundle inlines them (npm ci rewrites node_modules/.package-lock.json).
const lockfiles = () =>
  Math.max(...['package.json', 'package-lock.json', 'node_modules/.package-lock.json'].map((f) => mtime(join(root, f))));
const stale = (out, sources) => !ifStale || mtime(join(out, STAMP)) < sources;

async function buildServer() {
  const { build } = await import('esbuild');
  // Built aside and renamed into place, so that a process starting meanwhile never runs half a build.
  const tmp = `${SERVER}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await build({
    entryPoints: { bizora: join(root, 'src', 'cli', 'main.ts') },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // Native addons stay outside; so does pg's optional native binding, which is not installed,
    // and Swagger UI, which serves files from its own folder.
    external: ['better-sqlite3', 'pg-native', '@fastify/swagger-ui'],
    // Bundled CommonJS packages call require() for Node's own modules.
    banner: { js: "import { createRequire as __bizoraRequire } from 'node:module'; const require = __bizoraRequire(import.meta.url);" },
    logLevel: 'warning',
    // Without comments and whitespace, but with every name kept (stack traces stay readable):
    // V8 keeps a script's source and parses less of it; 8 MB less resident memory under load.
    minifyWhitespace: true,
    minifySyntax: true,
  });
  writeFileSync(join(tmp, STAMP), new Date().toISOString());
  rmSync(SERVER, { recursive: true, force: true });
  renameSync(tmp, SERVER);
}

function buildWeb() {
  // In its own process, with Vite's own command line; aside, then renamed into place.
  const tmp = `${WEB}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'web', 'vite.config.ts'), '--outDir', tmp],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  writeFileSync(join(tmp, STAMP), new Date().toISOString());
  rmSync(WEB, { recursive: true, force: true });
  renameSync(tmp, WEB);
}

/** One build at a time (two `npm start`s, or `npm test` beside one): the others wait, then see it done. */
async function withBuildLock(fn) {
  mkdirSync(join(root, 'dist'), { recursive: true });
  const lock = join(root, 'dist', '.build.lock');
  for (const until = Date.now() + 120_000; ; ) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A lock older than any build is left over from a build that was killed.
      if (Date.now() - mtime(lock) > 120_000 || Date.now() > until) rmSync(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

// A deployment (dist/ copied in, no sources, no build tools) has nothing to build: it runs dist/.
if (ifStale && !existsSync(join(root, 'src'))) {
  if (!existsSync(join(SERVER, 'bizora.mjs'))) {
    console.error('bizora: no dist/ and no sources to build it from');
    process.exit(1);
  }
  process.exit(0);
}

await withBuildLock(async () => {
  const started = performance.now();
  if (stale(SERVER, Math.max(newest(join(root, 'src')), lockfiles()))) {
    await buildServer();
    say(`built the server into dist/server (${Math.round(performance.now() - started)} ms)`);
  }
  const webStarted = performance.now();
  if (stale(WEB, Math.max(newest(join(root, 'web'), new Set(['dist', 'node_modules'])), lockfiles()))) {
    buildWeb();
    say(`built the dashboard into dist/web (${Math.round(performance.now() - webStarted)} ms)`);
  }
});
