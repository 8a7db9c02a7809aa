// The server as users run it (`bin/bizora.js serve`): one JSON log line per request on stdout,
// written by the process itself (src/app.ts), and never the key that authenticated it.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, ensureBuilt } from './support/build.ts';
import { freePort } from './support/free-port.ts';

ensureBuilt();
const run = promisify(execFile);

test('the served process logs each request as one JSON line on stdout, without the key', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bizora-serve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const env = {
    ...process.env,
    BIZORA_DATABASE_URL: `sqlite://${join(dir, 'bizora.db')}`,
    BIZORA_PORT: String(port),
    BIZORA_LOG_LEVEL: 'info',
  };
  const cli = async (...args: string[]) => JSON.parse((await run(process.execPath, [BIN, ...args, '--json'], { env })).stdout);
  const acct = (await cli('accounts', 'create', '--email', 'logs@example.com')) as { id: string };
  // A test key: recorded, never billed, so no credit is needed.
  const key = (await cli('keys', 'create', '--account', acct.id, '--name', 'logs', '--test')) as { key: string };

  const server = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  server.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
  t.after(() => server.kill('SIGKILL'));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
      break;
    } catch {
      if (i > 900) assert.fail(`the server did not start:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bizora', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  const requestId = res.headers.get('x-request-id');
  await res.arrayBuffer();
  server.kill('SIGTERM');
  assert.equal(await exited, 0);

  // Log lines are JSON; a fresh checkout's first start also says, in words, that it builds the dashboard.
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const chat = lines.filter((l) => l.url === '/v1/chat/completions');
  assert.equal(chat.length, 1, stdout);
  assert.equal(chat[0]?.msg, 'request');
  assert.equal(chat[0]?.status, 200);
  assert.equal(chat[0]?.method, 'POST');
  assert.equal(chat[0]?.reqId, requestId);
  assert.ok(
    lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGTERM: shutting down')),
    stdout,
  );
  assert.ok(!stdout.includes(key.key), 'the key is never logged');
});
