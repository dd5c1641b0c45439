import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batcher } from '../src/lib/batch.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a burst is flushed once, later items in the next batch', async () => {
  const got = [];
  const ctl = new AbortController();
  const b = batcher((items) => got.push(items), ctl.signal, 20);
  for (let i = 0; i < 500; i++) b.add(i);
  assert.deepEqual(got, []);
  await sleep(40);
  assert.equal(got.length, 1);
  assert.equal(got[0].length, 500);
  b.add('x');
  await sleep(40);
  assert.deepEqual(got[1], ['x']);
});

test('nothing is flushed after abort', async () => {
  const got = [];
  const ctl = new AbortController();
  const b = batcher((items) => got.push(items), ctl.signal, 10);
  b.add(1);
  ctl.abort();
  await sleep(30);
  assert.deepEqual(got, []);
});
