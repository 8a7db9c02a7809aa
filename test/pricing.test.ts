import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ceilCents, costMicros, floorCents, maxAffordableTokens } from '../src/billing/pricing.ts';

const price = { input_per_million_micros: 1_000_000, output_per_million_micros: 3_000_000, request_micros: 0 };

describe('pricing', () => {
  test('cost is integer micro-USD, rounded up, plus the request fee', () => {
    assert.equal(costMicros(price, 1_000_000, 0), 1_000_000);
    assert.equal(costMicros(price, 1, 1), 4);
    assert.equal(costMicros({ ...price, input_per_million_micros: 1 }, 1, 0), 1);
    assert.equal(costMicros({ ...price, request_micros: 500 }, 0, 0), 500);
  });

  test('cents for a 402 round the balance down and the cost up', () => {
    assert.equal(floorCents(509_999), 50);
    assert.equal(ceilCents(1_000_001), 101);
  });

  test('max_affordable_tokens is the largest max_tokens whose hold fits the balance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 1, max: 20_000_000 }),
        fc.integer({ min: 0, max: 1000 }),
        (prompt, available, out, fee) => {
          const p = { input_per_million_micros: 2_000_000, output_per_million_micros: out, request_micros: fee };
          const n = maxAffordableTokens(p, prompt, available) as number;
          if (n > 0) assert.ok(costMicros(p, prompt, n) <= available);
          assert.ok(costMicros(p, prompt, n + 1) > available || costMicros(p, prompt, n + 1) === costMicros(p, prompt, n));
        },
      ),
    );
  });
});
