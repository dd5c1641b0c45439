// Event kinds, their categories and one-line descriptions for people.

/** CATEGORIES of events, as the API names them. */
export const CATEGORIES = ['failover', 'health', 'connection', 'config', 'auth', 'system'];

/** KINDS maps each known event kind to its category (docs/api.md). */
export const KINDS = {
  failover: 'failover', 'failover-done': 'failover', 'member-removed': 'failover', diverged: 'failover', stalled: 'failover',
  'replica-up': 'health', 'replica-down': 'health', 'replica-admin': 'health', 'port-gone': 'health', 'port-back': 'health',
  'conn-refused': 'connection', 'conn-established': 'connection', 'conn-closed': 'connection',
  'config-applied': 'config', 'config-confirmed': 'config', 'config-rolled-back': 'config', 'config-fallback': 'config',
  login: 'auth', logout: 'auth', 'login-failed': 'auth', 'locked-out': 'auth', 'password-changed': 'auth', 'token-created': 'auth', 'token-revoked': 'auth',
  'tls-changed': 'system', reboot: 'system', 'factory-reset': 'system', 'daemon-started': 'system', started: 'system', stopped: 'system', 'operator-action': 'system',
};

/**
 * LIVE_CATEGORIES are streamed to the dashboard: every category but
 * "connection", whose open and close events come at the rate of the
 * traffic and are not even stored (the Connections page shows them).
 */
export const LIVE_CATEGORIES = CATEGORIES.filter((c) => c !== 'connection');

const conn = (ev) => (ev.conn ? ` on ${ev.conn}` : '');
const why = (ev) => (ev.reason ? ` (${ev.reason})` : '');

/** describe returns one sentence about an event. */
export function describe(ev) {
  switch (ev.kind) {
    case 'failover':
      return `Failover ${ev.from || '?'} → ${ev.replica || '?'}${conn(ev)}${why(ev)}`;
    case 'failover-done':
      return `Failover to ${ev.replica || '?'} completed${conn(ev)}${Number.isFinite(ev.stall_ms) ? `: the client waited ${ev.stall_ms} ms` : ''}`;
    case 'member-removed':
      return `Replica ${ev.replica} left ${ev.conn || 'a connection'}${why(ev)}`;
    case 'diverged':
      return `Replica ${ev.replica} diverged${conn(ev)}${ev.offset ? ` at offset ${ev.offset}` : ''}${why(ev)}`;
    case 'stalled':
      return `Replica ${ev.replica} stalled${conn(ev)}`;
    case 'replica-up':
      return `Replica ${ev.replica} is up${ev.port ? ` for ${ev.port}` : ''}`;
    case 'replica-down':
      return `Replica ${ev.replica} is down${ev.port ? ` for ${ev.port}` : ''}${why(ev)}`;
    case 'replica-admin':
      return `Replica ${ev.replica}: ${ev.detail || ev.reason || 'admin state changed'}`;
    case 'port-gone':
      return `Interface ${ev.port || '?'} of replica ${ev.replica} is gone${why(ev)}`;
    case 'port-back':
      return `Interface ${ev.port || '?'} of replica ${ev.replica} is back`;
    case 'operator-action':
      return `${ev.user || 'Someone'} ran ${ev.detail || 'an action'} on replica ${ev.replica}`;
    case 'config-applied':
    case 'config-confirmed':
    case 'config-rolled-back':
    case 'config-fallback':
      return `Configuration ${ev.kind.slice(7).replace('-', ' ')}${ev.detail ? `: ${ev.detail}` : ''}`;
    case 'login':
      return `${ev.user || 'Someone'} logged in${ev.remote ? ` from ${ev.remote}` : ''}`;
    case 'logout':
      return `${ev.user || 'Someone'} logged out`;
    case 'login-failed':
      return `Failed login${ev.user ? ` as ${ev.user}` : ''}${ev.remote ? ` from ${ev.remote}` : ''}`;
    case 'locked-out':
      return `${ev.remote || 'A client'} locked out${ev.detail ? `: ${ev.detail}` : ''}`;
    default: {
      const extra = [ev.replica && `replica ${ev.replica}`, ev.conn, ev.port, ev.reason, ev.detail].filter(Boolean).join(', ');
      return `${ev.kind}${extra ? `: ${extra}` : ''}`;
    }
  }
}

/**
 * matches applies the API's event filters to one event on the client, for
 * events that arrive on the live stream: kinds and categories are lists of
 * accepted values (empty accepts all), replica matches the new or the old
 * replica of an event.
 */
export function matches(ev, { kinds = [], categories = [], replica = '', sinceMs = 0 } = {}) {
  if (kinds.length && !kinds.includes(ev.kind)) return false;
  if (categories.length && !categories.includes(ev.category)) return false;
  if (replica && ev.replica !== replica && ev.from !== replica) return false;
  if (sinceMs && Date.parse(ev.time) < sinceMs) return false;
  return true;
}

/**
 * mergeEvents adds new events to a list ordered by seq, dropping
 * duplicates (a stream reconnect replays what the page may have), and
 * keeps the newest max.
 */
export function mergeEvents(list, add, max = 1000) {
  const bySeq = new Map(list.map((e) => [e.seq, e]));
  for (const e of add) bySeq.set(e.seq, e);
  const out = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return out.length > max ? out.slice(out.length - max) : out;
}

/**
 * collapseRuns groups neighbouring events (in the order given) of the same
 * kind, replica, previous replica and reason that come within windowMs of
 * each other: a failover of 500 connections is one row, not 500. It
 * returns [{ev (the first), events, count}].
 */
export function collapseRuns(list, windowMs = 2000) {
  const out = [];
  let cur = null;
  for (const ev of list) {
    const t = Date.parse(ev.time);
    if (cur && cur.ev.kind === ev.kind && (cur.ev.replica || '') === (ev.replica || '') && (cur.ev.from || '') === (ev.from || '') &&
        (cur.ev.reason || '') === (ev.reason || '') && Math.abs(t - cur.lastMs) <= windowMs) {
      cur.events.push(ev);
      cur.count++;
      cur.lastMs = t;
      continue;
    }
    cur = { ev, events: [ev], count: 1, lastMs: t };
    out.push(cur);
  }
  return out;
}
