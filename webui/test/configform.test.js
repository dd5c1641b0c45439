import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toForm, fromForm, formFields, fieldTarget, diffDocs, restartsDataplane, flatten } from '../src/lib/configform.js';

const doc = {
  version: 1,
  uplink: 'port0',
  replicas: [{ name: 'a', interface: 'port1' }, { name: 'b', interface: 'port2' }],
  services: [{ address: '198.18.0.10', ports: [7000, 80] }],
  health: { interval: '20ms', fail_after: 3 },
  limits: { max_connections: 1000 },
  management: { listen: ':8443' },
};

test('form round trip keeps the sections the form does not show', () => {
  const form = toForm(doc);
  assert.equal(form.services[0].ports, '7000, 80');
  assert.equal(form.health.fail_after, '3');
  assert.equal(form.health.rise_after, '');
  const { doc: back, errors } = fromForm(form, doc);
  assert.deepEqual(errors, []);
  assert.deepEqual(back, doc);
  assert.notEqual(back, doc);
});

test('empty optional inputs mean default and are left out', () => {
  const form = toForm(doc);
  form.health.interval = '';
  form.health.fail_after = ' ';
  form.vip_mac = '02:00:5e:10:00:01';
  const { doc: out } = fromForm(form, doc);
  assert.equal(out.health, undefined);
  assert.equal(out.vip_mac, '02:00:5e:10:00:01');
  form.vip_mac = '';
  assert.equal('vip_mac' in fromForm(form, { ...doc, vip_mac: 'x' }).doc, false);
});

test('inputs that cannot become JSON are errors at their field', () => {
  const form = toForm(doc);
  form.services[0].ports = '80 x443';
  form.health.fail_after = 'three';
  form.services[0].release = 'immediate';
  const { doc: out, errors } = fromForm(form, doc);
  assert.deepEqual(errors, [
    { field: 'services[0].ports', message: '"x443" is not a port number' },
    { field: 'health.fail_after', message: '"three" is not a whole number' },
  ]);
  assert.deepEqual(out.services[0], { address: '198.18.0.10', ports: [80], release: 'immediate' });
});

test('API error fields find their input', () => {
  const fields = formFields(toForm(doc));
  assert.equal(fieldTarget('uplink', fields), 'uplink');
  assert.equal(fieldTarget('services[0].ports[1]', fields), 'services[0].ports');
  assert.equal(fieldTarget('replicas[1].interface', fields), 'replicas[1].interface');
  assert.equal(fieldTarget('replicas[1]', fields), 'replicas[1].name');
  assert.equal(fieldTarget('health.interval', fields), 'health.interval');
  assert.equal(fieldTarget('health', fields), 'health.interval');
  assert.equal(fieldTarget('limits.max_connections', fields), null);
  assert.equal(fieldTarget('', fields), null);
  // "services[1]" must not match "services[10]..." nor "services[1]x".
  assert.equal(fieldTarget('services[1].ports', ['services[10].ports', 'services[1].address']), null);
});

test('diff lists changed, added and removed leaves', () => {
  const next = structuredClone(doc);
  next.health.interval = '50ms';
  next.replicas.push({ name: 'c', interface: 'port3' });
  delete next.limits;
  const d = diffDocs(doc, next);
  assert.deepEqual(d, [
    { path: 'replicas[2].name', op: 'added', after: '"c"' },
    { path: 'replicas[2].interface', op: 'added', after: '"port3"' },
    { path: 'health.interval', op: 'changed', before: '"20ms"', after: '"50ms"' },
    { path: 'limits.max_connections', op: 'removed', before: '1000' },
  ]);
  assert.equal(restartsDataplane(d), true);
  assert.deepEqual(diffDocs(doc, structuredClone(doc)), []);
  const mgmt = structuredClone(doc);
  mgmt.management.listen = ':9443';
  assert.equal(restartsDataplane(diffDocs(doc, mgmt)), false);
});

test('flatten keeps empty containers', () => {
  assert.deepEqual(flatten({ a: [], b: {}, c: [1] }), [['a', []], ['b', {}], ['c[0]', 1]]);
});

test('loops: a whole number, or empty for the default', () => {
  const form = toForm({ ...doc, loops: 3 });
  assert.equal(form.loops, '3');
  assert.equal(fromForm(form, { ...doc, loops: 3 }).doc.loops, 3);
  form.loops = ' ';
  assert.equal('loops' in fromForm(form, { ...doc, loops: 3 }).doc, false);
  form.loops = 'four';
  assert.deepEqual(fromForm(form, doc).errors, [{ field: 'loops', message: '"four" is not a whole number' }]);
  assert.equal(fieldTarget('loops', formFields(form)), 'loops');
});
