// Events: the timeline with filters, following the live stream, and
// export of what is shown as CSV or JSON.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { followEvents } from '../live.js';
import { batcher } from '../lib/batch.js';
import { html, Badge, download } from '../ui.js';
import { CATEGORIES, KINDS, LIVE_CATEGORIES, collapseRuns, describe, mergeEvents } from '../lib/events.js';
import { eventsToCSV, eventsToJSON, exportName } from '../lib/csv.js';
import { fmtTime } from '../lib/format.js';

const RANGES = [['15m', 900], ['1h', 3600], ['24h', 86400], ['7d', 604800], ['all', 0]];

/** eventQuery turns the filters into the API's query parameters. */
function eventQuery(f) {
  const q = {};
  if (f.kind) q.kind = f.kind;
  // "All" leaves out connection opens and closes, which come at the rate
  // of the traffic; choosing the category or a kind shows them.
  q.category = f.category || (f.kind ? '' : LIVE_CATEGORIES.join(','));
  if (f.replica) q.replica = f.replica;
  return q;
}

/** Events is the events page. */
export function Events({ replicas }) {
  const [f, setF] = useState({ kind: '', category: '', replica: '', range: '24h' });
  const [list, setList] = useState([]);
  const [err, setErr] = useState('');
  const [stream, setStream] = useState('connecting');
  const [paused, setPaused] = useState(false);
  const [grouped, setGrouped] = useState(true);

  useEffect(() => {
    const ctl = new AbortController();
    setList([]);
    (async () => {
      const secs = RANGES.find((r) => r[0] === f.range)[1];
      const q = eventQuery(f);
      let lastId = '';
      try {
        const hist = await api.get('/events', { ...q, limit: 1000, since: secs ? new Date(Date.now() + api.offset - secs * 1000).toISOString() : '' });
        if (ctl.signal.aborted) return;
        setList(hist.events);
        setErr('');
        if (hist.events.length) lastId = String(hist.events[hist.events.length - 1].seq);
      } catch (e) {
        setErr(e.message);
      }
      if (paused) return;
      const incoming = batcher((evs) => setList((l) => mergeEvents(l, evs, 5000)), ctl.signal);
      followEvents({ query: q, lastId, signal: ctl.signal, onEvent: (ev) => incoming.add(ev), onState: setStream });
    })();
    return () => ctl.abort();
  }, [f.kind, f.category, f.replica, f.range, paused]);

  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const shown = [...list].reverse();
  const now = Date.now() + api.offset;
  return html`
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Event filters">
      <label class="field">Category<select value=${f.category} onChange=${set('category')} name="category">
        <option value="">all but connection open/close</option>${CATEGORIES.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
      <label class="field">Kind<select value=${f.kind} onChange=${set('kind')} name="kind">
        <option value="">any</option>${Object.keys(KINDS).sort().map((k) => html`<option value=${k}>${k}</option>`)}</select></label>
      <label class="field">Replica<select value=${f.replica} onChange=${set('replica')} name="replica">
        <option value="">any</option>${(replicas || []).map((r) => html`<option value=${r.name}>${r.name}</option>`)}</select></label>
      <label class="field">Since<select value=${f.range} onChange=${set('range')} name="range">
        ${RANGES.map(([r]) => html`<option value=${r}>${r === 'all' ? 'all stored' : `last ${r}`}</option>`)}</select></label>
      <label class="check"><input type="checkbox" checked=${grouped} onChange=${(e) => setGrouped(e.currentTarget.checked)} name="grouped" /> Group bursts</label>
      <div class="filter-actions">
        <button type="button" class="btn" onClick=${() => setPaused(!paused)} aria-pressed=${paused}>${paused ? 'Resume live' : 'Pause live'}</button>
        <button type="button" class="btn" onClick=${() => download(exportName('csv'), 'text/csv', eventsToCSV(list))} data-testid="export-csv">Export CSV</button>
        <button type="button" class="btn" onClick=${() => download(exportName('json'), 'application/json', eventsToJSON(list))} data-testid="export-json">Export JSON</button>
      </div>
    </form>
    <p class="muted" data-testid="events-state">
      <span class=${`live-dot ${paused ? 'paused' : stream}`} aria-hidden="true"></span>
      ${paused ? 'Paused' : stream === 'live' ? 'Live' : 'Reconnecting…'} · ${list.length} event${list.length === 1 ? '' : 's'}
    </p>
    ${err && html`<p class="field-error" role="alert">${err}</p>`}
    <ol class="timeline" data-testid="timeline" aria-label="Events, newest first">
      ${(grouped ? collapseRuns(shown) : shown.map((ev) => ({ ev, events: [ev], count: 1 }))).map(({ ev, events, count }) => html`<li key=${ev.seq} class=${`ev ${ev.category}`} data-kind=${ev.kind} data-seq=${ev.seq} data-count=${count}>
        <time datetime=${ev.time}>${fmtTime(ev.time, now, true)}</time>
        <${Badge} kind=${ev.category}>${ev.kind}<//>
        ${count === 1
          ? html`<span class="ev-text">${describe(ev)}</span>`
          : html`<details class="ev-text"><summary><strong>${count} ×</strong> ${describe({ ...ev, conn: '' })}</summary>
              <ul class="ev-group">${events.slice(0, 200).map((e) => html`<li key=${e.seq}>${fmtTime(e.time, now, true)} ${describe(e)}</li>`)}${count > 200 ? html`<li>… and ${count - 200} more</li>` : ''}</ul></details>`}
      </li>`)}
    </ol>`;
}
