// The checkout's root folder (where package.json is), found from this module's own location so
// that it is right both from src/ (run through tsx) and from the bundle in dist/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Package = { name?: string; version?: string };

function findRoot(from: string): { dir: string; pkg: Package } {
  let dir = from;
  for (;;) {
    const file = join(dir, 'package.json');
    const pkg = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Package) : {};
    if (pkg.name === 'bizora') return { dir, pkg };
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the bizora package root');
    dir = up;
  }
}

const root = findRoot(dirname(fileURLToPath(import.meta.url)));
export const PROJECT_ROOT = root.dir;
export const PACKAGE_VERSION = root.pkg.version ?? '0.0.0';
