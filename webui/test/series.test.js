import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Series } from '../src/lib/series.js';

test('rates come from counter deltas', () => {
  const s = new Series(10);
  s.push(100, 1000, 5000, 3);
  s.push(102, 3000, 9000, 4);
  const [t, rx, tx] = s.throughput();
  assert.deepEqual(t, [100, 102]);
  assert.deepEqual(rx, [null, 1000]);
  assert.deepEqual(tx, [null, 2000]);
  assert.deepEqual(s.connections(), [[100, 102], [3, 4]]);
  assert.deepEqual(s.latest(), { rx: 1000, tx: 2000, conns: 4 });
});

test('a counter reset or a long gap breaks the line', () => {
  const s = new Series(10, 15);
  s.push(0, 1000, 1000, 1);
  s.push(2, 500, 1200, 1); // dataplane restarted: rx went back
  s.push(4, 700, 1400, 1);
  s.push(60, 900, 1600, 1); // the tab slept
  assert.deepEqual(s.throughput()[1], [null, null, 100, null]);
});

test('old samples fall off and stale ones are refused', () => {
  const s = new Series(3);
  for (let i = 1; i <= 5; i++) assert.equal(s.push(i, i * 10, i * 10, i), true);
  assert.equal(s.push(5, 0, 0, 0), false);
  assert.equal(s.push(5.5, 0, 0, 0), false);
  assert.deepEqual(s.connections(), [[3, 4, 5], [3, 4, 5]]);
  assert.deepEqual(new Series().latest(), { rx: null, tx: null, conns: null });
});
