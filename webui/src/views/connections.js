// Connections: a filtered, paginated table of the live connections and a
// connection's detail with its replicas.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, Badge, KV, useInterval } from '../ui.js';
import { fmtAgo, fmtBytes, fmtCount, fmtTime } from '../lib/format.js';

const PAGE = 25;
const STATES = ['syn-rcvd', 'established', 'time-wait', 'closed'];

function Members({ members }) {
  return html`<span class="members">${members.map((m) => html`<span class=${`member ${m.live ? 'live' : 'gone'} ${m.primary ? 'prim' : ''}`} title=${`${m.replica}: ${m.primary ? 'primary' : 'backup'}, ${m.live ? 'live' : 'left'}${m.joining ? ', joining' : ''}`}>
    ${m.replica}${m.primary ? '★' : ''}${m.live ? '' : '✕'}${m.joining ? '…' : ''}</span>`)}</span>`;
}

/** ConnDetail shows one connection, fetched fresh. */
function ConnDetail({ id, onClose }) {
  const [c, setC] = useState(null);
  const [err, setErr] = useState('');
  const ref = useRef(null);
  const load = async () => {
    try {
      setC(await api.get(`/connections/${encodeURIComponent(id)}`));
      setErr('');
    } catch (e) {
      setErr(e.status === 404 ? 'This connection is gone.' : e.message);
    }
  };
  useEffect(() => {
    load();
    ref.current?.focus();
  }, [id]);
  useInterval(load, 3000);
  const now = Date.now() + api.offset;
  return html`<section class="detail card" aria-labelledby="conn-title" tabindex="-1" ref=${ref} data-testid="conn-detail">
    <header><h3 id="conn-title">${id.replace('_', ' → ')}</h3><button class="btn small" onClick=${onClose}>Close</button></header>
    ${err && html`<p class="field-error">${err}</p>`}
    ${c && html`
      <${KV} rows=${[
        ['Client', c.client], ['Service', c.service], ['State', c.state],
        ['Primary', html`<strong data-testid="conn-primary">${c.primary || 'none'}</strong>`],
        ['From client', fmtBytes(c.bytes_in)], ['To client', fmtBytes(c.bytes_out)],
        ['Failovers', fmtCount(c.failovers)],
        ['Diverged', c.diverged ? html`<${Badge} kind="bad">yes<//>` : 'no'],
        ['Held output', fmtBytes(c.held_bytes)],
        ['Age', html`<span title=${fmtTime(c.created, now)}>${fmtAgo(Date.parse(c.created), now).replace(' ago', '')}</span>`],
      ]} />
      <h4>Replicas</h4>
      <table class="data"><thead><tr><th scope="col">Replica</th><th scope="col">Role</th><th scope="col">State</th></tr></thead>
        <tbody>${c.members.map((m) => html`<tr><td>${m.replica}</td><td>${m.primary ? 'primary' : 'backup'}</td><td>${m.live ? (m.joining ? 'joining' : 'live') : 'left'}</td></tr>`)}</tbody></table>
      <p class="muted small">${c.redundancy != null ? `${c.redundancy} live replica${c.redundancy === 1 ? '' : 's'}` : ''}${c.rejoinable ? '; a recovered replica can still join' : ''}</p>`}
  </section>`;
}

/** Connections is the connections page. */
export function Connections({ replicas }) {
  const [f, setF] = useState({ client: '', service: '', replica: '', state: '', diverged: false });
  const [applied, setApplied] = useState(f);
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState(null);
  const [err, setErr] = useState('');
  const [sel, setSel] = useState('');
  const load = async () => {
    try {
      const q = { ...applied, limit: PAGE, offset, diverged: applied.diverged ? 'true' : '' };
      setPage(await api.get('/connections', q));
      setErr('');
    } catch (e) {
      setErr(e.field ? `${e.field}: ${e.message}` : e.message);
    }
  };
  useEffect(() => {
    load();
  }, [applied, offset]);
  useInterval(load, 5000);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const now = Date.now() + api.offset;
  return html`
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); setOffset(0); setApplied({ ...f }); }}>
      <label class="field">Client<input type="search" placeholder="198.18.0.1 or :40000" value=${f.client} onInput=${set('client')} name="client" /></label>
      <label class="field">Service<input type="search" placeholder="198.18.0.10:80" value=${f.service} onInput=${set('service')} name="service" /></label>
      <label class="field">Replica<select value=${f.replica} onChange=${set('replica')} name="replica">
        <option value="">any</option>${(replicas || []).map((r) => html`<option value=${r.name}>${r.name}</option>`)}</select></label>
      <label class="field">State<select value=${f.state} onChange=${set('state')} name="state">
        <option value="">any</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <label class="check"><input type="checkbox" checked=${f.diverged} onChange=${set('diverged')} name="diverged" /> Diverged only</label>
      <button class="btn primary" type="submit">Search</button>
    </form>
    ${err && html`<p class="field-error" role="alert">${err}</p>`}
    ${sel && html`<${ConnDetail} id=${sel} onClose=${() => setSel('')} />`}
    ${page && html`
      <p class="muted" data-testid="conn-count">${page.total === 0 ? 'No connections match.' : `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${fmtCount(page.total)}`}${page.truncated ? ' (the table holds more than were scanned)' : ''}</p>
      <div class="table-wrap"><table class="data" data-testid="conn-table">
        <thead><tr><th scope="col">Client</th><th scope="col">Service</th><th scope="col">State</th><th scope="col">Replicas</th>
          <th scope="col" class="num">In</th><th scope="col" class="num">Out</th><th scope="col">Age</th><th scope="col">Diverged</th></tr></thead>
        <tbody>${page.connections.map((c) => html`<tr key=${c.id} class=${c.diverged ? 'bad' : ''}>
          <td><button class="link" onClick=${() => setSel(c.id)} aria-label=${`Details of ${c.client} to ${c.service}`}>${c.client}</button></td>
          <td>${c.service}</td><td>${c.state}</td><td><${Members} members=${c.members} /></td>
          <td class="num">${fmtBytes(c.bytes_in)}</td><td class="num">${fmtBytes(c.bytes_out)}</td>
          <td>${fmtAgo(Date.parse(c.created), now).replace(' ago', '')}</td><td>${c.diverged ? html`<${Badge} kind="bad">diverged<//>` : ''}</td>
        </tr>`)}</tbody>
      </table></div>
      <nav class="pager" aria-label="Pages">
        <button class="btn" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
        <button class="btn" disabled=${offset + PAGE >= page.total} onClick=${() => setOffset(offset + PAGE)}>Next</button>
      </nav>`}`;
}
