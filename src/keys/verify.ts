// Who is calling: reads the key from `Authorization: Bearer` or `X-Api-Key`, rejects malformed
// keys by their checksum before touching the database, then looks the key up by its SHA-256
// (a revoked or expired key is refused, and a rotated key's former secret after its grace).
// The row comes from the server's cache of key look-ups, which every change of a key empties on
// every instance (key-cache.ts): a revoked key is refused on every instance within a second, as
// the contract says.
import type { ApiKeyRow } from '../db/schema.ts';
import { ApiError } from '../errors.ts';
import { checkKeyFormat, hashKey } from './key-format.ts';
import type { KeyFinder } from './key-lookup.ts';

/** Who is calling: the key's row (its account is key.account_id). */
export type AuthContext = { key: ApiKeyRow };

type Headers = Record<string, string | string[] | undefined>;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The presented key, or an ApiError (missing / conflicting). */
export function extractKey(headers: Headers): string | ApiError {
  const auth = first(headers.authorization)?.trim();
  const xApiKey = first(headers['x-api-key'])?.trim();
  let bearer: string | undefined;
  if (auth) {
    const m = /^bearer\s+(\S+)$/i.exec(auth);
    // An Authorization header that is not a Bearer token is an invalid credential, not a missing one.
    if (!m) return new ApiError('invalid_api_key');
    bearer = m[1];
  }
  if (bearer && xApiKey && bearer !== xApiKey) return new ApiError('conflicting_api_keys');
  const key = bearer ?? xApiKey;
  return key ? key : new ApiError('missing_api_key');
}

/**
 * A request that carries Authorization or X-Api-Key more than once is refused like one with two
 * different keys. Node keeps only the first Authorization and joins X-Api-Key values with ', ',
 * so this reads the raw header list (names and values alternating).
 */
export function duplicateKeyHeaders(rawHeaders: readonly string[]): ApiError | null {
  let authorization = 0;
  let xApiKey = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++;
    else if (name.length === 9 && name.toLowerCase() === 'x-api-key') xApiKey++;
  }
  if (authorization < 2 && xApiKey < 2) return null;
  const header = authorization > 1 ? 'Authorization' : 'X-Api-Key';
  return new ApiError('conflicting_api_keys', { message: `The request carries more than one ${header} header. Send one key.` });
}

export async function authenticate(findKey: KeyFinder, headers: Headers, now: number): Promise<AuthContext> {
  const key = extractKey(headers);
  if (key instanceof ApiError) throw key;
  if (!checkKeyFormat(key)) throw new ApiError('invalid_api_key');
  const hash = hashKey(key);
  const row = await findKey(hash);
  if (!row || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) {
    throw new ApiError('invalid_api_key');
  }
  // A rotated key's former secret works until its grace ends.
  if (row.hash !== hash && (row.previous_valid_until === null || row.previous_valid_until <= now)) throw new ApiError('invalid_api_key');
  return { key: row };
}
