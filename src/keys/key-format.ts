// The API key format. `sk_live_` or `sk_test_`, then 33 random base62 characters (≥196 bits),
// then a 6-character base62 CRC32 of everything before it. The checksum lets our server (and
// secret scanners) reject a mistyped or invented key without a database look-up. Only the
// SHA-256 of a key is ever stored.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { encodeBase62, isBase62, randomBase62 } from '../lib/base62.ts';

export type KeyMode = 'live' | 'test';

export const KEY_PREFIX: Record<KeyMode, string> = { live: 'sk_live_', test: 'sk_test_' };
const RANDOM_CHARS = 33;
const CHECKSUM_CHARS = 6;
export const KEY_LENGTH = KEY_PREFIX.live.length + RANDOM_CHARS + CHECKSUM_CHARS;

const checksum = (body: string): string => encodeBase62(BigInt(crc32(body)), CHECKSUM_CHARS);

/** A secret with `prefix`: the random part, then the checksum of all before it. */
export function generateSecret(prefix: string): string {
  const body = prefix + randomBase62(RANDOM_CHARS);
  return body + checksum(body);
}

/** Whether `key` is a well-formed secret with `prefix` whose checksum holds. */
export function checkSecret(key: string, prefix: string): boolean {
  if (key.length !== prefix.length + RANDOM_CHARS + CHECKSUM_CHARS || !key.startsWith(prefix)) return false;
  if (!isBase62(key.slice(prefix.length))) return false;
  return checksum(key.slice(0, -CHECKSUM_CHARS)) === key.slice(-CHECKSUM_CHARS);
}

export const generateKey = (mode: KeyMode): string => generateSecret(KEY_PREFIX[mode]);

/** The key's mode if it is well formed and its checksum holds; null otherwise. */
export function checkKeyFormat(key: string): KeyMode | null {
  if (key.length !== KEY_LENGTH) return null;
  const mode: KeyMode | null = key.startsWith(KEY_PREFIX.live) ? 'live' : key.startsWith(KEY_PREFIX.test) ? 'test' : null;
  return mode && checkSecret(key, KEY_PREFIX[mode]) ? mode : null;
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** `sk_live_abcd…wxyz`: enough to tell keys apart in a list, far too little to use. */
export function previewKey(key: string): string {
  const mode: KeyMode = key.startsWith(KEY_PREFIX.test) ? 'test' : 'live';
  const prefix = KEY_PREFIX[mode];
  return `${prefix}${key.slice(prefix.length, prefix.length + 4)}…${key.slice(-4)}`;
}
