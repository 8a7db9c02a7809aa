// The key cache's own rule, with a look-up the test answers when it wants: a row read before the
// keys changed is never cached after the change (else a revocation during a look-up in flight
// would put the revoked key's old row back until the TTL).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiKeyRow } from '../src/db/schema.ts';
import { cachedKeyFinder, forgetCachedKeys, type KeyChanges } from '../src/keys/key-cache.ts';

const always: KeyChanges = { watching: true, subscribe: () => {}, close: async () => {} };

test('a look-up in flight while keys change is answered but not cached; the next one reads again', async () => {
  let reads = 0;
  let answer: (row: ApiKeyRow) => void = () => {};
  const row = { id: 'key_1', hash: 'h' } as ApiKeyRow;
  const cache = cachedKeyFinder(
    () => {
      reads++;
      return new Promise((resolve) => (answer = resolve));
    },
    { changes: always, now: () => 0 },
  );
  const inFlight = cache.find('h');
  forgetCachedKeys();
  answer(row);
  assert.equal(await inFlight, row);
  const again = cache.find('h');
  assert.equal(reads, 2, 'read again: the first row came from before the change');
  answer(row);
  await again;
  assert.equal(await cache.find('h'), row);
  assert.equal(reads, 2, 'a row read after the change is cached');
  await cache.close();
});
