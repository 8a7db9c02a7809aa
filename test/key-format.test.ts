import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkKeyFormat, generateKey, hashKey, KEY_LENGTH, previewKey } from '../src/keys/key-format.ts';
import { BASE62 } from '../src/lib/base62.ts';

describe('API key format', () => {
  test('live keys start with sk_live_, test keys with sk_test_, then base62 only', () => {
    assert.match(generateKey('live'), /^sk_live_[0-9A-Za-z]{39}$/);
    assert.match(generateKey('test'), /^sk_test_[0-9A-Za-z]{39}$/);
  });

  test('a key carries at least 192 bits of randomness before its 6-character checksum', () => {
    const randomChars = KEY_LENGTH - 'sk_live_'.length - 6;
    assert.ok(randomChars * Math.log2(62) >= 192, `${randomChars} base62 characters`);
    const keys = new Set(Array.from({ length: 2000 }, () => generateKey('live')));
    assert.equal(keys.size, 2000);
  });

  test('generated keys pass the checksum and report their mode', () => {
    assert.equal(checkKeyFormat(generateKey('live')), 'live');
    assert.equal(checkKeyFormat(generateKey('test')), 'test');
  });

  test('any single mistyped character is caught by the checksum', () => {
    fc.assert(
      fc.property(fc.nat(), fc.constantFrom(...BASE62), (pos, ch) => {
        const key = generateKey('live');
        const i = 'sk_live_'.length + (pos % (KEY_LENGTH - 'sk_live_'.length));
        fc.pre(key[i] !== ch);
        const typo = key.slice(0, i) + ch + key.slice(i + 1);
        return checkKeyFormat(typo) === null;
      }),
      { numRuns: 2000 },
    );
  });

  test('made-up, truncated and re-prefixed keys are refused', () => {
    const key = generateKey('live');
    assert.equal(checkKeyFormat('sk_live_abc123def456ghi789'), null);
    assert.equal(checkKeyFormat(key.slice(0, -1)), null);
    assert.equal(checkKeyFormat(key.replace('sk_live_', 'sk_test_')), null);
    assert.equal(checkKeyFormat(`${key.slice(0, -2)}!!`), null);
    assert.equal(checkKeyFormat(''), null);
  });

  test('the preview shows the prefix, four characters from each end and nothing else', () => {
    const key = generateKey('live');
    const preview = previewKey(key);
    assert.equal(preview, `sk_live_${key.slice(8, 12)}…${key.slice(-4)}`);
  });

  test('keys are stored as a SHA-256 hex digest', () => {
    assert.match(hashKey(generateKey('live')), /^[0-9a-f]{64}$/);
  });
});
