// Export of events as CSV and JSON (the Events page's download buttons).

/** The CSV columns, in order: every field an event may carry. */
export const EVENT_COLUMNS = ['seq', 'time', 'kind', 'category', 'replica', 'from', 'conn', 'port', 'reason', 'offset', 'detail', 'user', 'remote'];

/**
 * csvCell quotes one value as RFC 4180 wants, and defuses spreadsheet
 * formulas: a cell starting with = + - @ or a control character gets a
 * leading apostrophe, because event fields such as token names and user
 * names are typed by people and a spreadsheet would run them.
 */
export function csvCell(v) {
  if (v == null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  if (/[",\r\n]/.test(s)) s = `"${s.replace(/"/g, '""')}"`;
  return s;
}

/** eventsToCSV renders events with a header line, CRLF line ends. */
export function eventsToCSV(events) {
  const lines = [EVENT_COLUMNS.join(',')];
  for (const ev of events) lines.push(EVENT_COLUMNS.map((c) => csvCell(ev[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** eventsToJSON renders events as a pretty JSON array. */
export function eventsToJSON(events) {
  return JSON.stringify(events, null, 2) + '\n';
}

/** exportName names a download: ftbridge-events-20250101-100000.csv. */
export function exportName(ext, now = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `ftbridge-events-${stamp}.${ext}`;
}
