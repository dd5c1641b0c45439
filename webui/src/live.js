// Live state of the appliance: status and replicas polled every two
// seconds (the charts need regular samples anyway), recent events loaded
// once and then followed on the event stream, which also triggers an
// immediate refresh when something happens to a replica, so that a
// failover shows on the overview within a fraction of a second.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { SSEParser } from './lib/sse.js';
import { Series } from './lib/series.js';
import { LIVE_CATEGORIES, mergeEvents } from './lib/events.js';
import { batcher } from './lib/batch.js';

/** POLL_MS is the status polling period. */
export const POLL_MS = 2000;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * followEvents reads the event stream with the given filters until signal
 * aborts, reconnecting with Last-Event-ID so that no stored event is
 * missed. onState gets 'live' or 'reconnecting'.
 */
export async function followEvents({ query, lastId = '', signal, onEvent, onState = () => {} }) {
  let delay = 2000;
  while (!signal.aborted) {
    try {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query || {})) if (v) q.set(k, v);
      const headers = { Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch(`/api/v1/events/stream${q.toString() ? `?${q}` : ''}`, { headers, signal, credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) {
        api.onUnauthorized();
        return;
      }
      if (res.ok && res.body) {
        onState('live');
        const parser = new SSEParser(
          (ev) => {
            lastId = ev.id || lastId;
            try {
              onEvent(JSON.parse(ev.data));
            } catch {
              // Not an event object: nothing to show.
            }
          },
          (ms) => {
            delay = Math.min(Math.max(ms, 500), 30000);
          },
        );
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    onState('reconnecting');
    await sleep(delay, signal);
  }
}

// Kinds after which the replicas and status are fetched again at once.
const REFRESH_KINDS = /^(failover|replica-|port-|operator-action|config-|member-removed|diverged|stalled|started|stopped)/;

/** useLive returns the live state; it runs while the app is logged in. */
export function useLive(active) {
  const [state, setState] = useState({ status: null, replicas: null, events: [], config: null, stream: 'connecting', error: '', tick: 0 });
  const series = useRef(new Series());
  const refreshRef = useRef(() => {});

  useEffect(() => {
    if (!active) return undefined;
    const ctl = new AbortController();
    let timer = null;
    let busy = false;
    let again = false;
    let pendingVersion = null;

    const poll = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        const [status, reps] = await Promise.all([api.get('/status'), api.get('/replicas')]);
        const up = status.ports.find((p) => p.role === 'uplink');
        if (up) series.current.push(Date.now() / 1000, up.rx_bytes, up.tx_bytes, status.connections);
        let config;
        // The pending change's deadline is in /config; fetch it when the
        // status says something changed.
        const key = `${status.config.version}/${status.config.pending}`;
        if (key !== pendingVersion) {
          config = await api.get('/config');
          pendingVersion = key;
        }
        setState((s) => ({ ...s, status, replicas: reps.replicas, config: config || s.config, error: '', tick: s.tick + 1 }));
      } catch (e) {
        if (!ctl.signal.aborted) setState((s) => ({ ...s, error: e.message }));
      } finally {
        busy = false;
        if (again && !ctl.signal.aborted) {
          again = false;
          poll();
        }
      }
    };
    refreshRef.current = () => {
      pendingVersion = null;
      poll();
    };
    // A replica failing under many connections brings a burst of events;
    // they are merged into the state in batches, not one render each.
    const incoming = batcher((evs) => setState((s) => ({ ...s, events: mergeEvents(s.events, evs) })), ctl.signal);
    let soon = null;
    const refreshSoon = () => {
      if (!soon) {
        soon = setTimeout(() => {
          soon = null;
          poll();
        }, 50);
      }
    };

    (async () => {
      poll();
      timer = setInterval(poll, POLL_MS);
      let lastId = '';
      try {
        const since = new Date(Date.now() + api.offset - 24 * 3600 * 1000).toISOString();
        const hist = await api.get('/events', { category: LIVE_CATEGORIES.join(','), since, limit: 1000 });
        setState((s) => ({ ...s, events: mergeEvents(s.events, hist.events) }));
        if (hist.events.length) lastId = String(hist.events[hist.events.length - 1].seq);
      } catch {
        // The stream below still brings new events.
      }
      followEvents({
        query: { category: LIVE_CATEGORIES.join(',') },
        lastId,
        signal: ctl.signal,
        onEvent: (ev) => {
          incoming.add(ev);
          if (REFRESH_KINDS.test(ev.kind)) refreshSoon();
        },
        onState: (st) => setState((s) => ({ ...s, stream: st })),
      });
    })();
    return () => {
      ctl.abort();
      clearInterval(timer);
      clearTimeout(soon);
    };
  }, [active]);

  return { ...state, series: series.current, refresh: () => refreshRef.current() };
}
