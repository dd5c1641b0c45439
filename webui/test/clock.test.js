import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offsetFrom, remaining, ClockOffset } from '../src/lib/clock.js';

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

test('ClockOffset keeps the largest recent sample', () => {
  const c = new ClockOffset(10000);
  assert.equal(c.value(), 0);
  const base = Date.parse('2025-01-01T10:00:00Z');
  // The server is 5.3 s ahead: headers read 5 s or 6 s ahead, cut down.
  c.add(new Date(base + 5300).toUTCString(), base); // says +5000
  c.add(new Date(base + 1000 + 5300).toUTCString(), base + 1000 + 250); // +6300 cut to +6000, read 250 ms late: +4750
  assert.equal(c.value(), 5000);
  c.add(new Date(base + 2900 + 5300).toUTCString(), base + 2900); // 8200 cut to 8000: +5100
  assert.equal(c.value(), 5100);
  c.add('garbage', base + 3000);
  assert.equal(c.value(), 5100);
  // Old samples age out: the server's clock was set back.
  c.add(new Date(base + 20000 - 60000).toUTCString(), base + 20000);
  assert.equal(c.value(), -60000);
});
