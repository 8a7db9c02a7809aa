// `npm run build --if-stale`, for tests that need dist/ (test/run.ts runs it once before all of
// them; a file run on its own gets it here).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BUILD = fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url));

/** The `bizora` command as users run it (it runs dist/server). */
export const BIN = fileURLToPath(new URL('../../bin/bizora.js', import.meta.url));

export function ensureBuilt(): void {
  if (process.env.BIZORA_TEST_BUILT === '1') return;
  execFileSync(process.execPath, [BUILD, '--if-stale', '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
