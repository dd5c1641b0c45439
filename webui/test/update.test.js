import { test } from 'node:test';
import assert from 'node:assert/strict';
import { updateSummary, slotText, uploadBundle } from '../src/lib/update.js';

test('install states in words', () => {
  assert.equal(updateSummary({ state: 'idle' }).busy, false);
  assert.equal(updateSummary(undefined).text, '');
  const rx = updateSummary({ state: 'receiving', received_bytes: 50, size_bytes: 200 });
  assert.equal(rx.busy, true);
  assert.equal(rx.percent, 25);
  assert.match(rx.text, /25%/);
  assert.equal(updateSummary({ state: 'receiving', received_bytes: 50 }).percent, null);
  const inst = updateSummary({ state: 'installing', percent: 40, step: 'Checking bundle done.' });
  assert.equal(inst.percent, 40);
  assert.match(inst.text, /40% \(Checking bundle done\.\)/);
  const done = updateSummary({ state: 'installed', slot: 'B', reboot_required: true });
  assert.equal(done.reboot, true);
  assert.equal(done.busy, false);
  assert.match(done.text, /slot B/);
  const failed = updateSummary({ state: 'failed', error: 'rauc install failed: signature verification failed' });
  assert.equal(failed.level, 'error');
  assert.equal(failed.reboot, false);
  assert.match(failed.text, /signature verification failed/);
});

test('slot states in words', () => {
  assert.match(slotText({ state: 'trial' }), /committed once the daemon is healthy/);
  assert.equal(slotText({ state: 'committed' }), 'committed');
  assert.equal(slotText({ state: 'something new' }), 'something new');
});

// fakeXHR records what uploadBundle did and answers as told.
function fakeXHR(status, body, fail = false) {
  const x = {
    headers: {}, upload: {},
    open(m, u) { this.method = m; this.url = u; },
    setRequestHeader(k, v) { this.headers[k] = v; },
    send(b) {
      this.body = b;
      if (this.upload.onprogress) this.upload.onprogress({ loaded: 5, total: 10, lengthComputable: true });
      this.status = status;
      this.responseText = body;
      queueMicrotask(() => (fail ? this.onerror() : this.onload()));
    },
  };
  return x;
}

test('the upload: octet-stream, CSRF token, progress, answers', async () => {
  const file = { size: 10 };
  let x;
  const seen = [];
  const st = await uploadBundle(file, 'tok', (a, b) => seen.push(`${a}/${b}`), () => (x = fakeXHR(202, '{"state":"installing"}')));
  assert.equal(st.state, 'installing');
  assert.equal(x.method, 'POST');
  assert.equal(x.url, '/api/v1/system/update');
  assert.equal(x.headers['Content-Type'], 'application/octet-stream');
  assert.equal(x.headers['X-CSRF-Token'], 'tok');
  assert.equal(x.body, file);
  assert.deepEqual(seen, ['5/10']);
  await assert.rejects(uploadBundle(file, 'tok', null, () => fakeXHR(409, '{"error":{"code":"conflict","message":"an update is already installing"}}')),
    (e) => e.status === 409 && e.code === 'conflict' && /already installing/.test(e.message));
  await assert.rejects(uploadBundle(file, 'tok', null, () => fakeXHR(502, '<html>')), (e) => e.status === 502 && e.code === 'http');
  await assert.rejects(uploadBundle(file, 'tok', null, () => fakeXHR(0, '', true)), (e) => e.status === 0 && e.code === 'network');
});
