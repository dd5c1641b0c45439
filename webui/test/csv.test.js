import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvCell, eventsToCSV, eventsToJSON, exportName, EVENT_COLUMNS } from '../src/lib/csv.js';

test('csvCell quotes and defuses formulas', () => {
  assert.equal(csvCell(undefined), '');
  assert.equal(csvCell(42), '42');
  assert.equal(csvCell('plain'), 'plain');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('two\nlines'), '"two\nlines"');
  assert.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvCell('+1'), "'+1");
  assert.equal(csvCell('@sum'), "'@sum");
});

test('eventsToCSV writes a header and one line per event', () => {
  const csv = eventsToCSV([
    { seq: 1, time: '2025-01-01T10:00:00Z', kind: 'failover', category: 'failover', replica: 'b', from: 'a', conn: '198.18.0.1:4000->198.18.0.10:80', reason: 'replica-down' },
    { seq: 2, time: '2025-01-01T10:00:01Z', kind: 'token-created', category: 'auth', detail: '=cmd|calc', user: 'admin' },
  ]);
  const lines = csv.split('\r\n');
  assert.equal(lines[0], EVENT_COLUMNS.join(','));
  assert.equal(lines[1], '1,2025-01-01T10:00:00Z,failover,failover,b,a,198.18.0.1:4000->198.18.0.10:80,,replica-down,,,,');
  assert.equal(lines[2], "2,2025-01-01T10:00:01Z,token-created,auth,,,,,,,'=cmd|calc,admin,");
  assert.equal(lines[3], '');
  assert.equal(lines.length, 4);
});

test('eventsToJSON round-trips', () => {
  const evs = [{ seq: 1, kind: 'login' }];
  assert.deepEqual(JSON.parse(eventsToJSON(evs)), evs);
  assert.equal(exportName('csv', new Date(2025, 0, 2, 3, 4, 5)), 'ftbridge-events-20250102-030405.csv');
});
