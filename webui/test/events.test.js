import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, matches, mergeEvents, collapseRuns, KINDS, LIVE_CATEGORIES, CATEGORIES } from '../src/lib/events.js';

test('every kind has a known category; the live stream leaves out connection', () => {
  for (const [k, c] of Object.entries(KINDS)) assert.ok(CATEGORIES.includes(c), k);
  assert.deepEqual(LIVE_CATEGORIES, ['failover', 'health', 'config', 'auth', 'system']);
});

test('describe says what happened', () => {
  assert.equal(describe({ kind: 'failover', from: 'a', replica: 'b', conn: 'x->y', reason: 'replica-down' }), 'Failover a → b on x->y (replica-down)');
  assert.equal(describe({ kind: 'failover-done', replica: 'b', conn: 'x->y', stall_ms: 75.5 }), 'Failover to b completed on x->y: the client waited 75.5 ms');
  assert.equal(describe({ kind: 'replica-down', replica: 'a', reason: 'probe timeout' }), 'Replica a is down (probe timeout)');
  assert.equal(describe({ kind: 'config-rolled-back', detail: 'version 3 was not confirmed' }), 'Configuration rolled back: version 3 was not confirmed');
  assert.equal(describe({ kind: 'operator-action', user: 'admin', replica: 'b', detail: 'drain' }), 'admin ran drain on replica b');
  assert.equal(describe({ kind: 'brand-new', replica: 'a', detail: 'x' }), 'brand-new: replica a, x');
});

test('matches applies the API filters', () => {
  const ev = { kind: 'failover', category: 'failover', replica: 'b', from: 'a', time: '2025-01-01T10:00:00Z' };
  assert.equal(matches(ev), true);
  assert.equal(matches(ev, { kinds: ['replica-up'] }), false);
  assert.equal(matches(ev, { categories: ['failover', 'health'] }), true);
  assert.equal(matches(ev, { replica: 'a' }), true);
  assert.equal(matches(ev, { replica: 'c' }), false);
  assert.equal(matches(ev, { sinceMs: Date.parse('2025-01-01T11:00:00Z') }), false);
});

test('mergeEvents orders by seq, drops repeats and keeps the newest', () => {
  const l = mergeEvents([{ seq: 2 }, { seq: 1 }], [{ seq: 3 }, { seq: 2, x: 1 }]);
  assert.deepEqual(l.map((e) => e.seq), [1, 2, 3]);
  assert.equal(l[1].x, 1);
  assert.deepEqual(mergeEvents(l, [{ seq: 4 }], 2).map((e) => e.seq), [3, 4]);
});

test('collapseRuns groups a burst of like events', () => {
  const t = (ms) => new Date(Date.parse('2025-01-01T10:00:00Z') + ms).toISOString();
  const evs = [
    { seq: 1, time: t(0), kind: 'replica-down', replica: 'a' },
    { seq: 2, time: t(1), kind: 'failover', from: 'a', replica: 'b', reason: 'replica-down', conn: 'c1' },
    { seq: 3, time: t(2), kind: 'failover', from: 'a', replica: 'b', reason: 'replica-down', conn: 'c2' },
    { seq: 4, time: t(3), kind: 'failover', from: 'a', replica: 'b', reason: 'rst', conn: 'c3' },
    { seq: 5, time: t(9000), kind: 'failover', from: 'a', replica: 'b', reason: 'rst', conn: 'c4' },
    { seq: 6, time: t(9001), kind: 'failover', from: 'a', replica: 'c', reason: 'rst', conn: 'c5' },
  ];
  const runs = collapseRuns(evs);
  assert.deepEqual(runs.map((r) => [r.ev.seq, r.count]), [[1, 1], [2, 2], [4, 1], [5, 1], [6, 1]]);
  assert.deepEqual(runs[1].events.map((e) => e.conn), ['c1', 'c2']);
  // Newest first works the same.
  assert.deepEqual(collapseRuns([...evs].reverse()).map((r) => r.count), [1, 1, 1, 2, 1]);
  assert.deepEqual(collapseRuns([]), []);
});
