// The application/json body parser of the whole app: Fastify's own parser (JSON.parse through
// secure-json-parse, so `__proto__` and `constructor.prototype` keys are still refused), after
// a linear scan that refuses bodies nested deeper than MAX_JSON_DEPTH. Everything that walks a
// parsed body (validation, token counting, the backend's serialiser) may then recurse safely.
import { StringDecoder } from 'node:string_decoder';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';

/** No chat request needs more; 10,000 levels overflowed the stack of recursive walkers. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;

/**
 * Whether a JSON text nests arrays and objects more than `max` levels deep. One pass; string
 * contents (most of a chat body) are skipped with indexOf, so the loop only visits the
 * characters between strings. Malformed text is not judged here: JSON.parse refuses it next.
 */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  // Each level takes at least two characters, and one opening bracket: a text with no more than
  // `max` of them (most chat bodies have a handful) cannot be too deep. Counting them is a few
  // native indexOf calls, much cheaper than walking the text character by character.
  if (text.length <= 2 * max || openingBracketsAtMost(text, max)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      // A quote preceded by an odd number of backslashes is escaped. Each backslash is counted
      // once (it precedes one quote at most), so this stays linear.
      while (end !== -1) {
        let backslashes = 0;
        for (let k = end - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
        if ((backslashes & 1) === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return false;
      i = end;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

function openingBracketsAtMost(text: string, max: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > max) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > max) return false;
  return true;
}

/** Bodies up to this size are decoded in one go; larger ones a slice per event-loop turn. */
const DECODE_SLICE_BYTES = 1024 * 1024;

/**
 * UTF-8 bytes to text without holding the event loop: decoding 7 MiB of mixed-script text in
 * one call took 25-50 ms, a slice of 1 MiB takes a few. A character split between slices is
 * kept whole by the decoder.
 */
async function decodeInSlices(bytes: Buffer): Promise<string> {
  const decoder = new StringDecoder('utf8');
  const parts: string[] = [];
  for (let at = 0; at < bytes.length; at += DECODE_SLICE_BYTES) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    parts.push(decoder.write(bytes.subarray(at, at + DECODE_SLICE_BYTES)));
  }
  parts.push(decoder.end());
  return parts.join('');
}

/** Replaces Fastify's application/json parser with the depth-checked one (same options). */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // As bytes, with Fastify's own body limit and Content-Length checks; decoded here.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const parseText = (text: string) => {
      if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH)) done(new ApiError('json_too_deep', { param: null }), undefined);
      else parse(request, text, done);
    };
    const bytes = body as Buffer;
    // Every ordinary request: at once, without a promise on the request path.
    if (bytes.length <= DECODE_SLICE_BYTES) parseText(bytes.toString('utf8'));
    else decodeInSlices(bytes).then(parseText, (err: unknown) => done(err as Error, undefined));
  });
}
