// Failover incidents and their stall times, from the event log.
//
// The dataplane reports one "failover" event per connection: a replica
// that dies while serving 500 connections yields 500 events within a few
// milliseconds. An operator thinks of that as one incident, so events with
// the same previous and new primary that follow each other within a short
// window are grouped.
//
// Stall time: the dataplane may report the client-visible gap it measured
// (stall_ms) on a "failover-done" event for the connection, sent when the
// first segment after the failover reached the client, or on the failover
// event itself. Where no measurement arrived (an idle connection has no
// segment to measure, older firmware measures nothing) the incident shows
// the failure detection time instead, estimated from the health settings
// and the cause, and marked as an estimate.

import { parseDuration } from './format.js';

/** Defaults of the health settings (docs/config.md), in milliseconds. */
export const HEALTH_DEFAULTS = { interval: 20, fail_after: 3, stall_timeout: 300 };

/**
 * healthSettings returns interval, fail_after and stall_timeout (ms and
 * count) from a configuration document's health section, with defaults.
 */
export function healthSettings(health) {
  const h = health || {};
  const interval = parseDuration(h.interval);
  const stall = parseDuration(h.stall_timeout);
  return {
    interval: interval > 0 ? interval : HEALTH_DEFAULTS.interval,
    fail_after: Number.isInteger(h.fail_after) && h.fail_after > 0 ? h.fail_after : HEALTH_DEFAULTS.fail_after,
    stall_timeout: stall > 0 ? stall : HEALTH_DEFAULTS.stall_timeout,
  };
}

const ms = (ev) => Date.parse(ev.time);

/**
 * groupFailovers groups failover events (any order, other kinds ignored)
 * into incidents, newest first. Events join an incident when they have the
 * same from and to and come within windowMs of its previous event.
 */
export function groupFailovers(events, windowMs = 2000) {
  const fos = events.filter((e) => e.kind === 'failover' && Number.isFinite(ms(e))).sort((a, b) => ms(a) - ms(b) || a.seq - b.seq);
  const open = new Map();
  const incidents = [];
  for (const ev of fos) {
    const key = `${ev.from || ''}>${ev.replica || ''}`;
    const t = ms(ev);
    let inc = open.get(key);
    if (!inc || t - inc.lastMs > windowMs) {
      inc = { from: ev.from || '', to: ev.replica || '', firstMs: t, lastMs: t, count: 0, reasons: {}, conns: [], allConns: new Set(), stallMs: null, measured: 0, seq: ev.seq };
      open.set(key, inc);
      incidents.push(inc);
    }
    inc.lastMs = t;
    inc.count++;
    inc.seq = Math.max(inc.seq, ev.seq);
    const r = ev.reason || 'unknown';
    inc.reasons[r] = (inc.reasons[r] || 0) + 1;
    if (ev.conn && inc.conns.length < 20) inc.conns.push(ev.conn);
    if (ev.conn) inc.allConns.add(ev.conn);
    if (Number.isFinite(ev.stall_ms)) {
      inc.stallMs = Math.max(inc.stallMs ?? 0, ev.stall_ms);
      inc.measured++;
    }
  }
  // Each measurement belongs to the latest incident, at or before it, that
  // moved its connection to its replica.
  const dones = events.filter((e) => e.kind === 'failover-done' && Number.isFinite(e.stall_ms) && e.conn).sort((a, b) => ms(a) - ms(b));
  for (const d of dones) {
    let best = null;
    for (const inc of incidents) {
      if (inc.allConns.has(d.conn) && (!d.replica || d.replica === inc.to) && inc.firstMs <= ms(d) && (!best || inc.firstMs > best.firstMs)) best = inc;
    }
    if (best) {
      best.stallMs = Math.max(best.stallMs ?? 0, d.stall_ms);
      best.measured++;
    }
  }
  for (const inc of incidents) {
    inc.reason = Object.entries(inc.reasons).sort((a, b) => b[1] - a[1])[0][0];
  }
  return incidents.sort((a, b) => b.firstMs - a.firstMs || b.seq - a.seq);
}

/**
 * stallOf says how long the clients of an incident waited. It returns
 * {ms, estimated, basis}: ms is null when nothing can be said.
 * events are the surrounding events (the replica-down that caused it).
 */
export function stallOf(inc, events, health) {
  if (inc.stallMs != null) {
    return { ms: inc.stallMs, estimated: false, basis: `longest of ${inc.measured} measured by the dataplane` };
  }
  const h = healthSettings(health);
  switch (inc.reason) {
    case 'stalled':
      return { ms: h.stall_timeout, estimated: true, basis: `no progress for the stall timeout (${h.stall_timeout} ms)` };
    case 'replica-down': {
      // The replica-down event of the old primary just before tells how
      // it was noticed: the link (carrier) is near instant, probes take
      // fail_after missed rounds.
      const down = events
        .filter((e) => e.kind === 'replica-down' && e.replica === inc.from && ms(e) <= inc.firstMs + 50 && ms(e) >= inc.firstMs - 5000)
        .sort((a, b) => ms(b) - ms(a))[0];
      const why = down?.reason || '';
      if (/carrier|link|port gone/i.test(why)) {
        return { ms: 0, estimated: true, basis: `${why}: detected at once` };
      }
      const d = h.interval * h.fail_after;
      return { ms: d, estimated: true, basis: `${h.fail_after} missed probes × ${h.interval} ms${why ? ` (${why})` : ''}` };
    }
    case 'rst':
    case 'lone-fin':
    case 'diverged':
    case 'tolerated':
    case 'disabled':
    case 'hold-overflow':
      return { ms: 0, estimated: true, basis: `${inc.reason}: taken over at once` };
    default:
      return { ms: null, estimated: true, basis: `${inc.reason}: unknown` };
  }
}

/**
 * summarize counts what happened in the window before nowMs: failover
 * incidents and connections moved, replica downs, divergences.
 */
export function summarize(events, nowMs, windowMs = 3600000) {
  const recent = events.filter((e) => nowMs - ms(e) <= windowMs);
  const inc = groupFailovers(recent);
  return {
    incidents: inc.length,
    moved: inc.reduce((n, i) => n + i.count, 0),
    downs: recent.filter((e) => e.kind === 'replica-down').length,
    divergences: recent.filter((e) => e.kind === 'diverged').length,
    last: inc[0] || null,
  };
}
