import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupFailovers, stallOf, summarize, healthSettings } from '../src/lib/failovers.js';

const T0 = Date.parse('2025-01-01T10:00:00Z');
const at = (ms) => new Date(T0 + ms).toISOString();
let seq = 0;
const ev = (ms, kind, extra = {}) => ({ seq: ++seq, time: at(ms), kind, ...extra });

test('failovers close in time with the same pair form one incident', () => {
  const evs = [
    ev(0, 'replica-down', { replica: 'a', reason: 'probe timeout' }),
    ev(1, 'failover', { from: 'a', replica: 'b', conn: 'c1', reason: 'replica-down' }),
    ev(3, 'failover', { from: 'a', replica: 'b', conn: 'c2', reason: 'replica-down' }),
    ev(1500, 'failover', { from: 'a', replica: 'b', conn: 'c3', reason: 'rst' }),
    ev(1600, 'failover', { from: 'a', replica: 'c', conn: 'c4', reason: 'replica-down' }),
    ev(60000, 'failover', { from: 'b', replica: 'a', conn: 'c1', reason: 'stalled' }),
    ev(70000, 'replica-up', { replica: 'a' }),
  ];
  const inc = groupFailovers(evs);
  assert.equal(inc.length, 3);
  assert.deepEqual([inc[0].from, inc[0].to, inc[0].count, inc[0].reason], ['b', 'a', 1, 'stalled']);
  assert.deepEqual([inc[1].from, inc[1].to, inc[1].count], ['a', 'c', 1]);
  assert.deepEqual([inc[2].from, inc[2].to, inc[2].count, inc[2].reason], ['a', 'b', 3, 'replica-down']);
  assert.deepEqual(inc[2].conns, ['c1', 'c2', 'c3']);
  assert.equal(inc[2].firstMs, T0 + 1);
  assert.equal(inc[2].lastMs, T0 + 1500);
});

test('a pause longer than the window starts a new incident; order of input does not matter', () => {
  const evs = [ev(5000, 'failover', { from: 'a', replica: 'b' }), ev(0, 'failover', { from: 'a', replica: 'b' })];
  assert.equal(groupFailovers(evs, 2000).length, 2);
  assert.equal(groupFailovers(evs, 6000).length, 1);
  assert.deepEqual(groupFailovers([]), []);
});

test('stall: measured when the event says, else estimated from the cause', () => {
  const health = { interval: '50ms', fail_after: 4, stall_timeout: '1s' };
  const probe = [ev(0, 'replica-down', { replica: 'a', reason: 'probe timeout' }), ev(2, 'failover', { from: 'a', replica: 'b', reason: 'replica-down' })];
  let inc = groupFailovers(probe)[0];
  assert.deepEqual(stallOf(inc, probe, health), { ms: 200, estimated: true, basis: '4 missed probes × 50 ms (probe timeout)' });

  const link = [ev(0, 'replica-down', { replica: 'a', reason: 'carrier lost' }), ev(1, 'failover', { from: 'a', replica: 'b', reason: 'replica-down' })];
  inc = groupFailovers(link)[0];
  assert.equal(stallOf(inc, link, health).ms, 0);
  assert.match(stallOf(inc, link, health).basis, /carrier lost/);

  const stalled = [ev(0, 'failover', { from: 'a', replica: 'b', reason: 'stalled' })];
  assert.equal(stallOf(groupFailovers(stalled)[0], stalled, health).ms, 1000);
  // Defaults when the configuration says nothing.
  assert.equal(stallOf(groupFailovers(stalled)[0], stalled, undefined).ms, 300);
  assert.equal(stallOf(groupFailovers(probe)[0], probe, {}).ms, 60);

  const measured = [ev(0, 'failover', { from: 'a', replica: 'b', reason: 'stalled', stall_ms: 42 }), ev(1, 'failover', { from: 'a', replica: 'b', reason: 'stalled', stall_ms: 57 })];
  assert.deepEqual(stallOf(groupFailovers(measured)[0], measured, health), { ms: 57, estimated: false, basis: 'longest of 2 measured by the dataplane' });

  const odd = [ev(0, 'failover', { from: 'a', replica: 'b', reason: 'something-new' })];
  assert.equal(stallOf(groupFailovers(odd)[0], odd, health).ms, null);
});

test('a replica-down of another replica or long before does not explain a failover', () => {
  const evs = [
    ev(0, 'replica-down', { replica: 'a', reason: 'carrier lost' }),
    ev(10000, 'replica-down', { replica: 'b', reason: 'carrier lost' }),
    ev(10001, 'failover', { from: 'a', replica: 'b', reason: 'replica-down' }),
  ];
  assert.equal(stallOf(groupFailovers(evs)[0], evs, {}).ms, 60);
});

test('healthSettings ignores nonsense', () => {
  assert.deepEqual(healthSettings({ interval: 'x', fail_after: 0, stall_timeout: '-1s' }), { interval: 20, fail_after: 3, stall_timeout: 300 });
});

test('summarize counts the last hour only', () => {
  const now = T0 + 2 * 3600000;
  const evs = [
    ev(0, 'failover', { from: 'a', replica: 'b' }),
    ev(2 * 3600000 - 60000, 'replica-down', { replica: 'b' }),
    ev(2 * 3600000 - 59000, 'failover', { from: 'b', replica: 'a' }),
    ev(2 * 3600000 - 58999, 'failover', { from: 'b', replica: 'a' }),
    ev(2 * 3600000 - 1000, 'diverged', { replica: 'a' }),
  ];
  const s = summarize(evs, now);
  assert.equal(s.incidents, 1);
  assert.equal(s.moved, 2);
  assert.equal(s.downs, 1);
  assert.equal(s.divergences, 1);
  assert.equal(s.last.from, 'b');
});

test('failover-done measurements attach to the incident that moved the connection', () => {
  const evs = [
    ev(0, 'failover', { from: 'a', replica: 'b', conn: 'c1', reason: 'replica-down' }),
    ev(1, 'failover', { from: 'a', replica: 'b', conn: 'c2', reason: 'replica-down' }),
    ev(40, 'failover-done', { replica: 'b', conn: 'c1', stall_ms: 75.5 }),
    ev(90, 'failover-done', { replica: 'b', conn: 'c2', stall_ms: 120 }),
    ev(10000, 'failover', { from: 'b', replica: 'a', conn: 'c1', reason: 'stalled' }),
    ev(10300, 'failover-done', { replica: 'a', conn: 'c1', stall_ms: 310 }),
    // Not ours: another connection, or a measurement before the incident.
    ev(10400, 'failover-done', { replica: 'a', conn: 'zz', stall_ms: 999 }),
  ];
  const inc = groupFailovers(evs);
  assert.equal(inc.length, 2);
  assert.deepEqual(stallOf(inc[0], evs, {}), { ms: 310, estimated: false, basis: 'longest of 1 measured by the dataplane' });
  assert.deepEqual(stallOf(inc[1], evs, {}), { ms: 120, estimated: false, basis: 'longest of 2 measured by the dataplane' });
});
