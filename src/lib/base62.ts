// Base62 (0-9, A-Z, a-z) for key secrets, checksums and ids: URL-safe, double-click selectable.
import { randomFillSync } from 'node:crypto';

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE62_RE = /^[0-9A-Za-z]*$/;

export const isBase62 = (s: string): boolean => BASE62_RE.test(s);

/** Encodes a non-negative integer, left-padded with '0' to `width` characters. */
export function encodeBase62(value: bigint, width: number): string {
  let out = '';
  let v = value;
  while (v > 0n) {
    out = BASE62[Number(v % 62n)] + out;
    v /= 62n;
  }
  if (out.length > width) throw new RangeError(`value does not fit in ${width} base62 characters`);
  return out.padStart(width, '0');
}

// Random bytes are drawn from the CSPRNG in 4 KiB refills rather than per call: every request
// makes several ids, and a system call per id showed in profiles. The bytes are as random.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomByte(): number {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++] as number;
}

/**
 * `length` uniformly random base62 characters, by rejection sampling bytes (no modulo bias):
 * each character carries log2(62) ≈ 5.954 bits.
 */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}
