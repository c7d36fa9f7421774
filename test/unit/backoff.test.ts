import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff } from '../../src/client/backoff.js';

test('backoff grows exponentially up to max, with full jitter', () => {
  assert.equal(backoff(0, 100, 10_000, () => 1), 100);
  assert.equal(backoff(3, 100, 10_000, () => 1), 800);
  assert.equal(backoff(20, 100, 10_000, () => 1), 10_000);
  assert.equal(backoff(3, 100, 10_000, () => 0.5), 400);
});

test('backoff never goes below half the minimum, so retries never hammer', () => {
  assert.equal(backoff(5, 100, 10_000, () => 0), 50);
  const samples = Array.from({ length: 1000 }, (_, i) => backoff(i % 10, 100, 5000));
  assert.ok(samples.every((d) => d >= 50 && d <= 5000));
  assert.ok(new Set(samples).size > 100, 'delays are spread, not synchronized');
});
