// Overview: which replica serves, whether redundancy is intact, what
// happened lately, one card per replica with its actions, live charts.

import { useMemo } from 'preact/hooks';
import { html, Badge, KV } from '../ui.js';
import { Chart } from '../charts.js';
import { computeAlarms, redundancy, serving } from '../lib/alarms.js';
import { groupFailovers, stallOf, summarize } from '../lib/failovers.js';
import { fmtAgo, fmtBytes, fmtCount, fmtDuration, fmtRate, fmtTime } from '../lib/format.js';

/** Alarms lists alarms, worst first. */
export function Alarms({ alarms }) {
  if (alarms.length === 0) return html`<p class="all-good" data-testid="no-alarms">No alarms.</p>`;
  return html`<ul class="alarms" data-testid="alarms" aria-label="Alarms">
    ${alarms.map((a) => html`<li key=${a.id} class=${`alarm ${a.level}`} data-alarm=${a.id}>
      <span class="alarm-level">${{ crit: 'Critical', warn: 'Warning', info: 'Note' }[a.level]}</span> ${a.text}
    </li>`)}
  </ul>`;
}

function replicaActions(r) {
  const out = [];
  if (r.admin === 'enabled') out.push('drain');
  if (r.admin !== 'disabled') out.push('disable');
  if (r.admin !== 'enabled') out.push('enable');
  if (r.role !== 'primary' && serving(r)) out.push('promote');
  return out;
}

/** ReplicaCard shows one replica's state and its actions. */
function ReplicaCard({ r, now, onAction, status }) {
  const primaryOf = status?.roles?.primaries?.[r.name] ?? r.primary_of;
  const sinceMs = Date.parse(r.since);
  const health = r.health === 'up' ? 'up' : 'down';
  return html`<article class=${`card replica ${health} ${r.role}`} data-replica=${r.name} aria-labelledby=${`rep-${r.name}`}>
    <header>
      <h3 id=${`rep-${r.name}`}>${r.name}</h3>
      <${Badge} kind=${r.role === 'primary' ? 'primary' : 'backup'}><span data-testid="role">${r.role}</span><//>
      <${Badge} kind=${health}><span data-testid="health">${health === 'up' ? 'healthy' : 'down'}</span><//>
      ${r.admin !== 'enabled' && html`<${Badge} kind="admin"><span data-testid="admin">${r.admin}</span><//>`}
    </header>
    <${KV} rows=${[
      ['Probe latency', r.health === 'up' && r.probe_rtt_ms > 0 ? `${r.probe_rtt_ms.toFixed(r.probe_rtt_ms < 1 ? 3 : 1)} ms` : '–'],
      ['Link', html`${r.interface}: ${!r.port_present ? 'missing' : r.carrier ? 'up' : 'no carrier'}`],
      ['Connections', html`${fmtCount(r.connections)} <span class="muted">(primary of ${fmtCount(primaryOf)})</span>`],
      ['Services up', r.services_up.length ? r.services_up.map((s) => html`<span class="nowrap">${s}</span> `) : 'none'],
      ['Last change', Number.isFinite(sinceMs) && sinceMs > 0 ? html`<span title=${fmtTime(sinceMs, now, true)}>${health} ${fmtAgo(sinceMs, now)}</span>${r.reason ? html` <span class="muted">(${r.reason})</span>` : ''}` : '–'],
      ['Traffic', `${fmtBytes(r.rx_bytes)} in, ${fmtBytes(r.tx_bytes)} out`],
    ]} />
    <div class="card-actions">
      ${replicaActions(r).map((a) => html`<button class="btn small" onClick=${() => onAction(r, a)} data-action=${a}>${a[0].toUpperCase() + a.slice(1)}</button>`)}
    </div>
  </article>`;
}

/** FailoverTable lists the latest failover incidents with their stall. */
function FailoverTable({ incidents, events, health, now }) {
  if (incidents.length === 0) return html`<p class="muted" data-testid="no-failovers">No failovers in the last 24 hours.</p>`;
  return html`<div class="table-wrap"><table class="data" data-testid="failovers">
    <thead><tr><th scope="col">When</th><th scope="col">From → to</th><th scope="col">Connections</th><th scope="col">Cause</th><th scope="col">Stall</th></tr></thead>
    <tbody>${incidents.map((inc) => {
      const st = stallOf(inc, events, health);
      return html`<tr key=${inc.seq}>
        <td><span title=${fmtTime(inc.firstMs, now, true)}>${fmtAgo(inc.firstMs, now)}</span></td>
        <td>${inc.from || '?'} → <strong>${inc.to || '?'}</strong></td>
        <td class="num">${fmtCount(inc.count)}</td>
        <td>${inc.reason}</td>
        <td title=${st.basis}>${st.ms == null ? '–' : `${st.estimated ? '≈ ' : ''}${st.ms === 0 ? '0 ms' : fmtDuration(st.ms / 1000)}`}${st.estimated ? html`<span class="sr-only"> (estimate: ${st.basis})</span>` : ''}</td>
      </tr>`;
    })}</tbody>
  </table></div>`;
}

/** Overview is the landing page. */
export function Overview({ live, theme, onAction }) {
  const { status, replicas, events, config, series } = live;
  const now = Date.now() + (live.offset || 0);
  const incidents = useMemo(() => groupFailovers(events).slice(0, 8), [events]);
  if (!replicas || !status) return html`<p class="muted">Loading…</p>`;
  const red = redundancy(replicas);
  const primary = replicas.find((r) => r.role === 'primary');
  const sum = summarize(events, now);
  const alarms = computeAlarms(status, replicas, events);
  const latest = series.latest();
  const health = config?.config?.health;
  return html`
    <section class="hero" aria-label="Summary">
      <div class=${`tile ${primary && serving(primary) ? 'ok' : 'bad'}`} data-testid="serving">
        <span class="tile-label">Serving new connections</span>
        <span class="tile-value">${primary ? primary.name : 'none'}</span>
        <span class="tile-note">${primary ? `${primary.interface}, ${primary.health === 'up' ? 'healthy' : 'down'}` : 'no replica can serve'}</span>
      </div>
      <div class=${`tile ${red.state === 'intact' ? 'ok' : 'bad'}`} data-testid="redundancy">
        <span class="tile-label">Redundancy</span>
        <span class="tile-value">${red.state[0].toUpperCase() + red.state.slice(1)}</span>
        <span class="tile-note">${red.healthy.length} of ${red.total} replicas healthy</span>
      </div>
      <div class="tile" data-testid="last-hour">
        <span class="tile-label">Last hour</span>
        <span class="tile-value">${sum.incidents} failover${sum.incidents === 1 ? '' : 's'}</span>
        <span class="tile-note">${sum.last ? `last ${fmtAgo(sum.last.firstMs, now)}: ${sum.last.from} → ${sum.last.to}, ${sum.moved} conn.` : 'none'}${sum.downs ? `; ${sum.downs} replica down event${sum.downs === 1 ? '' : 's'}` : ''}</span>
      </div>
      <div class="tile" data-testid="traffic">
        <span class="tile-label">Live</span>
        <span class="tile-value">${fmtCount(status.connections)} conn.</span>
        <span class="tile-note">${fmtRate(latest.rx)} in, ${fmtRate(latest.tx)} out</span>
      </div>
    </section>
    <h2 class="sr-only">Alarms</h2>
    <${Alarms} alarms=${alarms} />
    <h2>Replicas</h2>
    <section class="cards" data-testid="replicas">
      ${replicas.map((r) => html`<${ReplicaCard} key=${r.name} r=${r} now=${now} status=${status} onAction=${onAction} />`)}
    </section>
    <h2>Traffic</h2>
    <section class="charts">
      <${Chart} testid="chart-throughput" title="Throughput through the uplink" theme=${theme} data=${series.throughput()} axisFmt=${(v) => fmtRate(v)}
        lines=${[{ label: 'From clients', color: '--c1', fmt: fmtRate }, { label: 'To clients', color: '--c2', fmt: fmtRate }]} />
      <${Chart} testid="chart-conns" title="Connections" theme=${theme} integer=${true} data=${series.connections()} axisFmt=${(v) => fmtCount(v)}
        lines=${[{ label: 'Connections', color: '--c3', fmt: fmtCount }]} />
    </section>
    <h2>Last failovers</h2>
    <${FailoverTable} incidents=${incidents} events=${events} health=${health} now=${now} />
    <p class="muted small">${fmtCount(status.failovers)} connection failovers and ${fmtCount(status.divergences)} divergences since the dataplane started ${fmtAgo(Date.parse(status.dataplane.started), now)}. The stall is the detection time estimated from the health settings (≈) unless the dataplane measured it.</p>`;
}
