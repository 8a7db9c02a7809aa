import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toApiError } from '../src/app.ts';
import { ApiError, CATALOGUE, type ErrorCode } from '../src/errors.ts';
import { clientErrorToApiError } from '../src/http/client-errors.ts';
import { jsonNestsDeeperThan } from '../src/http/json-body.ts';

describe('error catalogue', () => {
  // Every entry's status, type, code and headers are checked against the README's table and over
  // HTTP in error-catalogue.test.ts; here, the exact bodies the contract fixes.
  test('the 401 body is byte-for-byte the documented one', () => {
    assert.equal(
      JSON.stringify(new ApiError('invalid_api_key').toBody()),
      '{"error":{"message":"Invalid API key","type":"authentication_error","code":null}}',
    );
  });

  test('the 402 body is byte-for-byte the documented one', () => {
    const e = new ApiError('insufficient_balance', { details: { balance_before_cents: 50, cost_cents: 100 } });
    assert.equal(e.status, 402);
    assert.equal(
      JSON.stringify(e.toBody()),
      '{"error":{"type":"insufficient_balance","message":"Your API balance is insufficient...","details":{"balance_before_cents":50,"cost_cents":100}}}',
    );
  });

  test('the statuses follow the contract table', () => {
    const expected: Partial<Record<ErrorCode, [number, string]>> = {
      invalid_request: [400, 'invalid_request_error'],
      invalid_api_key: [401, 'authentication_error'],
      insufficient_balance: [402, 'insufficient_balance'],
      permission_denied: [403, 'permission_error'],
      model_not_found: [404, 'not_found_error'],
      route_not_found: [404, 'not_found_error'],
      method_not_allowed: [405, 'invalid_request_error'],
      request_timeout: [408, 'invalid_request_error'],
      body_too_large: [413, 'invalid_request_error'],
      uri_too_long: [414, 'invalid_request_error'],
      expectation_failed: [417, 'invalid_request_error'],
      headers_too_large: [431, 'invalid_request_error'],
      malformed_request: [400, 'invalid_request_error'],
      json_too_deep: [400, 'invalid_request_error'],
      invalid_text: [400, 'invalid_request_error'],
      service_unavailable: [503, 'api_error'],
      rate_limited: [429, 'rate_limit_error'],
      internal_error: [500, 'api_error'],
      upstream_error: [502, 'upstream_error'],
      upstream_timeout: [504, 'upstream_error'],
    };
    for (const [code, [status, type]] of Object.entries(expected) as Array<[ErrorCode, [number, string]]>) {
      assert.deepEqual([CATALOGUE[code].status, CATALOGUE[code].type], [status, type], code);
    }
  });
});

describe('errors from below the routes become catalogue errors', () => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

  test('PostgreSQL refusing text it cannot store (a NUL byte) is a 400, not a 500', () => {
    for (const code of ['22021', '22P05']) {
      const e = toApiError(withCode(code, 'invalid byte sequence for encoding "UTF8": 0x00'));
      assert.equal(e?.status, 400, code);
      assert.equal(e?.type, 'invalid_request_error');
    }
  });

  test('a database that cannot be reached or does not answer is a 503 with Retry-After', () => {
    for (const err of [withCode('57014'), withCode('ECONNREFUSED'), new Error('timeout exceeded when trying to connect')]) {
      const e = toApiError(err);
      assert.equal(e?.code, 'service_unavailable', err.message);
      assert.equal(e?.status, 503);
      assert.equal(e?.headers['retry-after'], '1');
    }
  });

  test("Fastify's URL errors are ours and do not echo the URL", () => {
    const badUrl = toApiError(
      Object.assign(new Error("'/v1/%zz' is not a valid url component"), { code: 'FST_ERR_BAD_URL', statusCode: 400 }),
    );
    assert.equal(badUrl?.status, 400);
    assert.doesNotMatch(badUrl?.message ?? '', /%zz/);
    assert.equal(toApiError(Object.assign(new Error('long'), { code: 'FST_ERR_MAX_PARAM_LENGTH' }))?.status, 414);
  });

  test("Node's parser errors map to 400, 408, 414 and 431", () => {
    const node = (code: string, rawPacket?: string) =>
      clientErrorToApiError(Object.assign(withCode(code), rawPacket ? { rawPacket: Buffer.from(rawPacket) } : {}), 8192);
    assert.equal(node('ERR_HTTP_REQUEST_TIMEOUT').status, 408);
    assert.equal(node('HPE_INVALID_METHOD').status, 400);
    assert.equal(node('HPE_INVALID_CHUNK_SIZE').code, 'malformed_request');
    assert.equal(node('HPE_SOMETHING_NEW').status, 400);
    assert.equal(node('HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(17_000)}`).status, 414);
    assert.equal(node('HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n`).status, 414);
    assert.equal(node('HPE_HEADER_OVERFLOW', `GET / HTTP/1.1\r\nX: ${'a'.repeat(17_000)}`).status, 431);
    assert.equal(node('HPE_HEADER_OVERFLOW', 'a'.repeat(17_000)).status, 431);
  });
});

describe('the JSON nesting bound', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  test('counts arrays and objects, up to the bound and one past it', () => {
    assert.equal(jsonNestsDeeperThan(nested(64), 64), false);
    assert.equal(jsonNestsDeeperThan(nested(65), 64), true);
    assert.equal(jsonNestsDeeperThan(`${'{"a":'.repeat(65)}1${'}'.repeat(65)}`, 64), true);
    assert.equal(jsonNestsDeeperThan(`[${'[],'.repeat(1000)}[]]`, 64), false, 'many siblings are not depth');
  });

  test('brackets inside strings, escaped quotes and backslashes do not count', () => {
    const inString = JSON.stringify({ a: '['.repeat(500), b: '{'.repeat(500) });
    assert.equal(jsonNestsDeeperThan(inString, 64), false);
    const escapedQuote = JSON.stringify({ a: `"${'['.repeat(500)}"`, b: '\\', c: `\\"${'{'.repeat(200)}` });
    assert.equal(jsonNestsDeeperThan(escapedQuote, 64), false);
    // Depth hidden behind a string that ends in an escaped backslash is still found.
    assert.equal(jsonNestsDeeperThan(`[${JSON.stringify('x\\')},${nested(70)}]`, 64), true);
    // Closing brackets inside strings cannot hide depth.
    assert.equal(jsonNestsDeeperThan(`${'["]",'.repeat(70)}1${']'.repeat(70)}`, 64), true);
  });

  test('takes linear time: 8 MB of brackets or of flat JSON in seconds at most, not hours', () => {
    const started = Date.now();
    assert.equal(jsonNestsDeeperThan(nested(4_000_000), 64), true);
    assert.equal(jsonNestsDeeperThan(JSON.stringify(Array.from({ length: 400_000 }, (_, i) => ({ k: `v${i}`, n: [i] }))), 64), false);
    // ~100 ms alone; a quadratic scan of 8 MB would take hours. The bound leaves room for a loaded machine.
    assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
  });
});
