import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offsetFrom, remaining } from '../src/lib/clock.js';

test('offset from the Date header', () => {
  const local = Date.parse('2025-01-01T10:00:00Z');
  assert.equal(offsetFrom('Wed, 01 Jan 2025 10:01:00 GMT', local), 60000);
  assert.equal(offsetFrom('', local), null);
  assert.equal(offsetFrom(null, local), null);
});

test('remaining counts down on the server clock', () => {
  const local = Date.parse('2025-01-01T10:00:00Z');
  assert.equal(remaining('2025-01-01T10:01:00Z', local, 0), 60);
  // Our clock is a minute behind the server: nothing left.
  assert.equal(remaining('2025-01-01T10:01:00Z', local, 60000), 0);
  assert.equal(remaining('2025-01-01T10:00:00.200Z', local, 0), 1);
  assert.equal(remaining('2025-01-01T09:00:00Z', local, 0), 0);
  assert.equal(remaining('nonsense', local, 0), 0);
});
