import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError, CATALOGUE, type ErrorCode } from '../src/errors.ts';

describe('error catalogue', () => {
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    test(`${code} has an OpenAI-shaped body and a status the SDKs map`, () => {
      const e = new ApiError(code);
      const entry = CATALOGUE[code];
      assert.equal(e.status, entry.status);
      assert.ok(e.status >= 400 && e.status < 600);
      const body = e.toBody();
      assert.equal(typeof body.error.message, 'string');
      assert.ok((body.error.message as string).length > 0);
      assert.equal(body.error.type, entry.type);
      if (e.status >= 500) assert.ok(['api_error', 'upstream_error'].includes(entry.type));
      if (!entry.retry) assert.equal(e.headers['x-should-retry'], 'false');
      // Only the API-key failures challenge for a Bearer token; the dashboard's 401s do not.
      const apiKeyFailure = ['missing_api_key', 'invalid_api_key', 'conflicting_api_keys'].includes(code);
      assert.equal(e.headers['www-authenticate'], apiKeyFailure ? 'Bearer' : undefined);
    });
  }

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
      body_too_large: [413, 'invalid_request_error'],
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
