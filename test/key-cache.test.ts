// The key cache's own rules, with a look-up the test answers when it wants and a clock it sets:
// a row read before the keys changed (a change made here, or one heard of from the database) is
// never cached after the change, else a revocation during a look-up in flight would put the
// revoked key's old row back until the TTL; and a clock set back does not stretch the TTL.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiKeyRow } from '../src/db/schema.ts';
import { cachedKeyFinder, forgetCachedKeys, KEY_CACHE_TTL_MS } from '../src/keys/key-cache.ts';
import type { WatchKeyChanges } from '../src/keys/key-changes.ts';

const row = { id: 'key_1', hash: 'h' } as ApiKeyRow;

/** A cache over a look-up that waits for the test's answer; `heard()` is a change from the database. */
function setUp(now: () => number) {
  let reads = 0;
  let answer: (r: ApiKeyRow) => void = () => {};
  let heard = () => {};
  const watch: WatchKeyChanges = (changed) => {
    heard = changed;
    return { watching: true, close: async () => {} };
  };
  const cache = cachedKeyFinder(
    () => {
      reads++;
      return new Promise((resolve) => (answer = resolve));
    },
    { watch, now },
  );
  return { cache, reads: () => reads, answer: (r: ApiKeyRow) => answer(r), heard: () => heard() };
}

for (const [how, change] of [
  ['made in this process', (_s: ReturnType<typeof setUp>) => forgetCachedKeys()],
  ['heard of from the database', (s: ReturnType<typeof setUp>) => s.heard()],
] as const)
  test(`a look-up in flight while keys change (${how}) is answered but not cached; the next one reads again`, async () => {
    const s = setUp(() => 0);
    const inFlight = s.cache.find('h');
    change(s);
    s.answer(row);
    assert.equal(await inFlight, row);
    const again = s.cache.find('h');
    assert.equal(s.reads(), 2, 'read again: the first row came from before the change');
    s.answer(row);
    await again;
    assert.equal(await s.cache.find('h'), row);
    assert.equal(s.reads(), 2, 'a row read after the change is cached');
    await s.cache.close();
  });

test('a clock set back reads the key again rather than trusting it for longer than the TTL', async () => {
  let now = 10 * KEY_CACHE_TTL_MS;
  const s = setUp(() => now);
  const first = s.cache.find('h');
  s.answer(row);
  await first;
  await s.cache.find('h');
  assert.equal(s.reads(), 1, 'cached');
  now -= 3_600_000;
  const after = s.cache.find('h');
  assert.equal(s.reads(), 2, 'read again after the clock went back an hour');
  s.answer(row);
  await after;
  await s.cache.close();
});
