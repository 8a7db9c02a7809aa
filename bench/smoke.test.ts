// The benchmark's short mode: every target starts, is driven at 1 and 32 connections, the table
// prints, and the honesty check passes (every 200 is a billed usage record; the ledger verifies).
// No timing is asserted: speed is for `npm run bench` to print, not for a test to guess.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('npm run bench -- --smoke drives every target and checks its own honesty', { timeout: 240_000 }, async () => {
  const args = ['--import', 'tsx', 'bench/run.ts', '--smoke'];
  if (process.env.BIZORA_TEST_POSTGRES !== '1') args.push('--no-postgres');
  const run = await promisify(execFile)(process.execPath, args, { cwd: ROOT, maxBuffer: 8 * 1024 * 1024 }).catch(
    (err: { stdout?: string; stderr?: string }) => {
      assert.fail(`the benchmark failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    },
  );
  const { stdout } = run;
  assert.match(stdout, /\| target \| mode \| conns \| req\/s \|/);
  for (const target of ['direct upstream', 'bare forwarder', 'bizora \\(SQLite\\)']) {
    assert.match(stdout, new RegExp(`\\| ${target} \\| json \\| 32 \\|`), target);
    assert.match(stdout, new RegExp(`\\| ${target} \\| stream \\| 32 \\|`), target);
  }
  const honesty = stdout.slice(stdout.indexOf('Honesty:'));
  assert.match(honesty, /- ok bizora \(SQLite\): (\d+) responses with 200, \1 of them billed usage records; ledger verifies, 0 open holds/);
  if (process.env.BIZORA_TEST_POSTGRES === '1') assert.match(honesty, /- ok bizora \(PostgreSQL\)/);
  assert.doesNotMatch(honesty, /FAILED/);
});
