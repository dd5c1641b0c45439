import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeAlarms, redundancy, serving } from '../src/lib/alarms.js';

const rep = (name, o = {}) => ({ name, interface: `port-${name}`, health: 'up', admin: 'enabled', carrier: true, port_present: true, ...o });

test('serving and redundancy', () => {
  assert.equal(serving(rep('a')), true);
  assert.equal(serving(rep('a', { admin: 'drained' })), true);
  assert.equal(serving(rep('a', { admin: 'disabled' })), false);
  assert.equal(serving(rep('a', { health: 'down' })), false);
  assert.deepEqual(redundancy([rep('a'), rep('b')]), { state: 'intact', healthy: ['a', 'b'], total: 2 });
  assert.deepEqual(redundancy([rep('a'), rep('b', { health: 'down' })]), { state: 'degraded', healthy: ['a'], total: 2 });
  assert.equal(redundancy([rep('a', { health: 'down' }), rep('b', { admin: 'disabled' })]).state, 'down');
});

test('no alarms when all is well', () => {
  assert.deepEqual(computeAlarms({ divergences: 0, config: { pending: false } }, [rep('a'), rep('b')]), []);
  assert.deepEqual(computeAlarms(null, null), []);
});

test('degraded redundancy is critical and comes first', () => {
  const al = computeAlarms({ divergences: 2, config: { pending: true } }, [rep('a', { carrier: false, health: 'down' }), rep('b')], [
    { kind: 'diverged', time: '2025-01-01T10:00:00Z', replica: 'b', conn: 'x->y' },
    { kind: 'diverged', time: '2025-01-01T11:00:00Z', replica: 'a', conn: 'p->q' },
  ]);
  assert.deepEqual(al.map((a) => [a.level, a.id]), [['crit', 'redundancy'], ['warn', 'carrier-a'], ['warn', 'diverged'], ['warn', 'pending']]);
  assert.match(al[0].text, /only b is healthy/);
  assert.match(al[2].text, /2 times.*replica a on p->q/);
});

test('missing port, down replica, admin states, single replica, total loss', () => {
  const al = computeAlarms({}, [rep('a', { port_present: false, health: 'down' }), rep('b', { health: 'down', reason: 'probe timeout' }), rep('c', { admin: 'disabled' }), rep('d', { admin: 'drained' })]);
  assert.deepEqual(al.map((a) => a.id), ['redundancy', 'port-a', 'down-b', 'admin-c', 'admin-d']);
  assert.match(al[0].text, /only d is healthy \(1 of 4\)/);
  assert.match(computeAlarms({}, [rep('a', { health: 'down' }), rep('b', { admin: 'disabled' })])[0].text, /No healthy replica/);
  assert.match(al[2].text, /probe timeout/);
  assert.deepEqual(computeAlarms({}, [rep('a')]).map((a) => a.id), ['single']);
});
