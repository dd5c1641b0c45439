// Formatting of numbers, sizes, rates, durations and times for display.
// Pure functions: unit-tested with node --test (test/format.test.js).

const SI = ['', 'k', 'M', 'G', 'T', 'P'];

// scaled returns n divided down by 1000s with its prefix, keeping three
// significant digits so that columns of figures stay comparable.
function scaled(n) {
  let i = 0;
  let v = Math.abs(n);
  while (v >= 999.5 && i < SI.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = v >= 100 || i === 0 ? 0 : v >= 10 ? 1 : 2;
  return { text: (n < 0 ? '-' : '') + v.toFixed(digits), prefix: SI[i] };
}

/** fmtBytes formats a byte count: 0 B, 999 B, 1.50 kB, 12.3 MB. */
export function fmtBytes(n) {
  if (n == null || !Number.isFinite(n)) return '–';
  const { text, prefix } = scaled(n);
  return `${text} ${prefix}B`;
}

/** fmtRate formats bytes per second as bits per second: 12.3 Mbit/s. */
export function fmtRate(bytesPerSec) {
  if (bytesPerSec == null || !Number.isFinite(bytesPerSec)) return '–';
  const { text, prefix } = scaled(bytesPerSec * 8);
  return `${text} ${prefix}bit/s`;
}

/** fmtCount formats an integer with thin grouping: 12 345. */
export function fmtCount(n) {
  if (n == null || !Number.isFinite(n)) return '–';
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}

/**
 * fmtDuration formats seconds the way an operator reads them: the two
 * largest units (3d 4h, 5m 12s), milliseconds below a second (850 ms),
 * microseconds below a millisecond.
 */
export function fmtDuration(sec) {
  if (sec == null || !Number.isFinite(sec)) return '–';
  if (sec < 0) sec = 0;
  if (sec < 0.001) return `${Math.round(sec * 1e6)} µs`;
  if (sec < 1) {
    const ms = sec * 1000;
    return `${ms < 10 ? ms.toFixed(1).replace(/\.0$/, '') : Math.round(ms)} ms`;
  }
  if (sec < 60) return `${sec < 10 ? sec.toFixed(1).replace(/\.0$/, '') : Math.floor(sec)} s`;
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts = [];
  let rest = Math.floor(sec);
  for (const [u, size] of units) {
    if (rest >= size || parts.length > 0) {
      parts.push(`${Math.floor(rest / size)}${u}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** fmtAgo says how long ago a time was, relative to now (both ms). */
export function fmtAgo(thenMs, nowMs) {
  if (thenMs == null || !Number.isFinite(thenMs)) return '–';
  const d = (nowMs - thenMs) / 1000;
  if (d < 1) return 'just now';
  return `${fmtDuration(d)} ago`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/**
 * fmtTime formats a time as local HH:MM:SS, with the date in front when it
 * is not the same day as now; ms adds milliseconds.
 */
export function fmtTime(t, nowMs = Date.now(), ms = false) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return '–';
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (ms) s += `.${pad(d.getMilliseconds(), 3)}`;
  const now = new Date(nowMs);
  if (d.toDateString() !== now.toDateString()) {
    s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
  }
  return s;
}

const UNIT_MS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/**
 * parseDuration parses a Go duration string ("20ms", "1.5s", "2h45m") into
 * milliseconds, or returns null when it is not one. The configuration uses
 * this syntax for every duration.
 */
export function parseDuration(s) {
  if (typeof s !== 'string') return null;
  s = s.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    pos = 1;
  }
  if (pos >= s.length) return null;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return null;
    total += parseFloat(m[1]) * UNIT_MS[m[2]];
    pos = re.lastIndex;
  }
  return neg ? -total : total;
}
