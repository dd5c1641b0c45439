import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtBytes, fmtRate, fmtCount, fmtDuration, fmtAgo, fmtTime, parseDuration } from '../src/lib/format.js';

test('fmtBytes keeps three significant digits', () => {
  assert.equal(fmtBytes(0), '0 B');
  assert.equal(fmtBytes(999), '999 B');
  assert.equal(fmtBytes(1000), '1.00 kB');
  assert.equal(fmtBytes(1500), '1.50 kB');
  assert.equal(fmtBytes(12345678), '12.3 MB');
  assert.equal(fmtBytes(999999), '1.00 MB');
  assert.equal(fmtBytes(null), '–');
  assert.equal(fmtBytes(NaN), '–');
});

test('fmtRate shows bits per second', () => {
  assert.equal(fmtRate(125000), '1.00 Mbit/s');
  assert.equal(fmtRate(0), '0 bit/s');
  assert.equal(fmtRate(null), '–');
});

test('fmtCount groups thousands', () => {
  assert.equal(fmtCount(1234567), '1\u202f234\u202f567');
  assert.equal(fmtCount(12), '12');
});

test('fmtDuration picks the two largest units', () => {
  assert.equal(fmtDuration(0.0005), '500 µs');
  assert.equal(fmtDuration(0.06), '60 ms');
  assert.equal(fmtDuration(0.0025), '2.5 ms');
  assert.equal(fmtDuration(3.25), '3.3 s');
  assert.equal(fmtDuration(42), '42 s');
  assert.equal(fmtDuration(312), '5m 12s');
  assert.equal(fmtDuration(3600), '1h 0m');
  assert.equal(fmtDuration(3 * 86400 + 4 * 3600 + 5), '3d 4h');
  assert.equal(fmtDuration(-5), '0 µs');
});

test('fmtAgo', () => {
  assert.equal(fmtAgo(1000, 1500), 'just now');
  assert.equal(fmtAgo(0, 65000), '1m 5s ago');
  assert.equal(fmtAgo(undefined, 0), '–');
});

test('fmtTime adds the date only for another day', () => {
  const now = new Date(2025, 0, 2, 12, 0, 0).getTime();
  assert.equal(fmtTime(new Date(2025, 0, 2, 9, 5, 7), now), '09:05:07');
  assert.equal(fmtTime(new Date(2025, 0, 1, 9, 5, 7, 42), now, true), '2025-01-01 09:05:07.042');
  assert.equal(fmtTime('garbage', now), '–');
});

test('parseDuration reads Go durations', () => {
  assert.equal(parseDuration('20ms'), 20);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2h45m'), 2 * 3600000 + 45 * 60000);
  assert.equal(parseDuration('300us'), 0.3);
  assert.equal(parseDuration('1h0m0s'), 3600000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('-1s'), -1000);
  assert.equal(parseDuration('20'), null);
  assert.equal(parseDuration('ms'), null);
  assert.equal(parseDuration('1d'), null);
  assert.equal(parseDuration(''), null);
  assert.equal(parseDuration(undefined), null);
});
