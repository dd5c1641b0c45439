import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEParser } from '../src/lib/sse.js';

function parse(chunks) {
  const out = [];
  const retries = [];
  const p = new SSEParser((e) => out.push(e), (r) => retries.push(r));
  for (const c of chunks) p.feed(c);
  return { out, retries, p };
}

test('the firmware stream: comment, retry, events with id and kind', () => {
  const text = ': ftbridge event stream\nretry: 2000\n\nid: 43\nevent: failover\ndata: {"seq":43}\n\n: keep-alive\n\nid: 44\nevent: replica-up\ndata: {"seq":44}\n\n';
  const { out, retries, p } = parse([text]);
  assert.deepEqual(retries, [2000]);
  assert.deepEqual(out, [
    { type: 'failover', data: '{"seq":43}', id: '43' },
    { type: 'replica-up', data: '{"seq":44}', id: '44' },
  ]);
  assert.equal(p.lastId, '44');
});

test('chunks cut anywhere, including inside CRLF', () => {
  const text = 'id: 7\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n';
  for (let cut = 1; cut < text.length; cut++) {
    const { out } = parse([text.slice(0, cut), text.slice(cut)]);
    assert.deepEqual(out, [{ type: 'x', data: 'a\nb', id: '7' }], `cut at ${cut}`);
  }
  // One character at a time.
  assert.deepEqual(parse(text.split('')).out, [{ type: 'x', data: 'a\nb', id: '7' }]);
});

test('bare CR line ends, BOM, no space after colon, unknown fields', () => {
  const { out } = parse(['\ufeffdata:one\rfoo: bar\r\rdata\n\n']);
  assert.deepEqual(out, [
    { type: 'message', data: 'one', id: '' },
    { type: 'message', data: '', id: '' },
  ]);
});

test('an event without data is not dispatched; the id still counts', () => {
  const { out, p } = parse(['id: 9\nevent: x\n\ndata: y\n\n']);
  assert.deepEqual(out, [{ type: 'message', data: 'y', id: '9' }]);
  assert.equal(p.lastId, '9');
});

test('an incomplete event waits for its blank line', () => {
  const { out } = parse(['data: partial\n']);
  assert.deepEqual(out, []);
});
