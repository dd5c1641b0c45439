// Configuration: a form for the uplink, replicas, services and health
// settings, checked by the API with errors shown at the field, a diff to
// review, safe apply (the global banner then counts down to the automatic
// rollback), and the history with rollback.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, FieldError, confirmAction, notify } from '../ui.js';
import { HEALTH_FIELDS, diffDocs, fieldTarget, formFields, fromForm, restartsDataplane, toForm } from '../lib/configform.js';
import { fmtTime } from '../lib/format.js';

const TIMEOUTS = ['30s', '60s', '120s', '300s'];
const fid = (path) => `f-${path.replace(/[^a-z0-9]+/gi, '-')}`;

/** Input is one labelled text input bound to a field path. */
function Input({ path, label, value, onInput, errors, placeholder, help, width }) {
  const err = errors[path];
  const id = fid(path);
  return html`<label class=${`field ${err ? 'invalid' : ''} ${width || ''}`} for=${id}>${label}
    <input id=${id} data-field=${path} value=${value} placeholder=${placeholder} onInput=${(e) => onInput(e.currentTarget.value)}
      aria-invalid=${err ? 'true' : 'false'} aria-describedby=${err ? `${id}-err` : help ? `${id}-help` : undefined} autocomplete="off" spellcheck="false" />
    ${help && !err && html`<span class="help" id=${`${id}-help`}>${help}</span>`}
    <${FieldError} id=${`${id}-err`} text=${err} />
  </label>`;
}

/** Diff lists the changes a new document makes. */
function Diff({ diff }) {
  return html`<table class="data diff" data-testid="config-diff">
    <thead><tr><th scope="col">Setting</th><th scope="col">Now</th><th scope="col">After applying</th></tr></thead>
    <tbody>${diff.map((d) => html`<tr class=${d.op}><td><code>${d.path}</code></td>
      <td>${d.op === 'added' ? html`<em>not set</em>` : html`<del>${d.before}</del>`}</td>
      <td>${d.op === 'removed' ? html`<em>not set (default)</em>` : html`<ins>${d.after}</ins>`}</td></tr>`)}</tbody>
  </table>`;
}

/** History lists the stored versions with rollback. */
function History({ current, onChanged }) {
  const [versions, setVersions] = useState([]);
  const [open, setOpen] = useState(null);
  const load = async () => {
    try {
      setVersions((await api.get('/config/history')).versions);
    } catch {
      setVersions([]);
    }
  };
  useEffect(() => {
    load();
  }, [current]);
  const show = async (v) => {
    if (open && open.version === v) return setOpen(null);
    setOpen(await api.get(`/config/history/${v}`));
  };
  const rollback = async (v) => {
    const ok = await confirmAction({
      title: `Roll back to version ${v}?`,
      body: html`<p>Version ${v}'s document is applied again as a new version. If it differs outside the management section, the dataplane restarts and live connections are dropped.</p>`,
      action: 'Roll back',
      danger: true,
    });
    if (!ok) return;
    try {
      const res = await api.post('/config/rollback', { version: v });
      notify(`Version ${v} restored as version ${res.version}.`);
      onChanged();
    } catch (e) {
      notify(e.message, 'error');
    }
  };
  return html`<div class="table-wrap"><table class="data" data-testid="config-history">
    <thead><tr><th scope="col">Version</th><th scope="col">Applied</th><th scope="col">Source</th><th scope="col">Comment</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${versions.map((v) => html`<tr key=${v.version}>
      <td>${v.version}${v.version === current ? html` <span class="badge primary">current</span>` : ''}</td>
      <td>${fmtTime(v.applied)}</td><td>${v.source}</td><td>${v.comment || ''}</td>
      <td class="row-actions"><button class="btn small" onClick=${() => show(v.version)} aria-expanded=${open?.version === v.version}>View</button>
        ${v.version !== current && html`<button class="btn small" onClick=${() => rollback(v.version)}>Roll back to this</button>`}</td>
    </tr>`)}</tbody>
  </table></div>
  ${open && html`<pre class="json" aria-label=${`Version ${open.version}`}>${JSON.stringify(open.config, null, 2)}</pre>`}`;
}

/** Config is the configuration page. */
export function Config({ live }) {
  const [state, setState] = useState(null); // GET /config
  const [form, setForm] = useState(null);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState('');
  const [review, setReview] = useState(null);
  const [timeout, setTimeoutSel] = useState('60s');
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const dirty = useRef(false);
  const root = useRef(null);

  const load = async () => {
    const st = await api.get('/config');
    setState(st);
    setForm(toForm(st.config));
    setErrors({});
    setFormError('');
    setReview(null);
    dirty.current = false;
  };
  useEffect(() => {
    load().catch((e) => setFormError(e.message));
  }, []);
  // Follow changes made elsewhere (a rollback, another operator) unless
  // the form has edits.
  const liveVersion = live.status?.config?.version;
  useEffect(() => {
    if (state && liveVersion && liveVersion !== state.version && !dirty.current) load().catch(() => {});
  }, [liveVersion]);

  if (!form) return html`<p class="muted">${formError || 'Loading…'}</p>`;

  const update = (mut) => {
    const next = structuredClone(form);
    mut(next);
    setForm(next);
    setReview(null);
    dirty.current = true;
  };
  const setField = (path, fn) => (v) => {
    update(fn(v));
    if (errors[path]) setErrors({ ...errors, [path]: undefined });
  };
  const focusField = (path) => {
    const el = root.current?.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (el) el.focus();
  };
  const showError = (field, message) => {
    // The API's message starts with the field's path, which the input's
    // label says better.
    if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
    const target = fieldTarget(field, formFields(form));
    if (target) {
      setErrors({ [target]: message });
      setFormError('');
      setTimeout(() => focusField(target), 0);
    } else {
      setErrors({});
      setFormError(message);
    }
  };

  const check = async () => {
    setReview(null);
    const { doc, errors: local } = fromForm(form, state.config);
    if (local.length) {
      showError(local[0].field, local[0].message);
      return;
    }
    setBusy(true);
    try {
      const res = await api.post('/config/validate', doc);
      if (!res.valid) {
        showError(res.error.error.field, res.error.error.message);
        return;
      }
      setErrors({});
      setFormError('');
      const diff = diffDocs(state.config, doc);
      if (diff.length === 0) {
        notify('Nothing to apply: the form matches the running configuration.', 'info');
        return;
      }
      setReview({ doc, diff, restarts: restartsDataplane(diff) });
    } catch (e) {
      setFormError(e.message);
    } finally {
      setBusy(false);
    }
  };

  const apply = async () => {
    setBusy(true);
    try {
      const res = await api.put('/config', review.doc, { confirm_timeout: timeout, comment });
      notify(res.pending ? `Version ${res.version} applied: confirm it before the countdown ends.` : `Version ${res.version} applied.`);
      setComment('');
      await load();
      live.refresh();
    } catch (e) {
      if (e.code === 'invalid_config') showError(e.field, e.message);
      else setFormError(e.message);
      setReview(null);
    } finally {
      setBusy(false);
    }
  };

  const pending = state.pending || live.config?.pending;
  return html`<div ref=${root}>
    <p class="muted">Running version ${state.version}, applied ${fmtTime(state.applied)} (${state.source}${state.comment ? `: ${state.comment}` : ''}).</p>
    <form class="config" onSubmit=${(e) => { e.preventDefault(); check(); }} novalidate data-testid="config-form">
      ${formError && html`<p class="field-error" role="alert" data-testid="form-error">${formError}</p>`}
      <fieldset><legend>Uplink</legend>
        <${Input} path="uplink" label="Client-side interface" value=${form.uplink} errors=${errors} onInput=${setField('uplink', (v) => (f) => { f.uplink = v; })} help="The port towards clients and the router." />
      </fieldset>

      <fieldset><legend>Replicas <span class="muted">(in order of preference: the first healthy one is primary)</span></legend>
        ${form.replicas.map((r, i) => html`<div class="row" key=${i}>
          <${Input} path=${`replicas[${i}].name`} label="Name" value=${r.name} errors=${errors} onInput=${setField(`replicas[${i}].name`, (v) => (f) => { f.replicas[i].name = v; })} />
          <${Input} path=${`replicas[${i}].interface`} label="Interface" value=${r.interface} errors=${errors} onInput=${setField(`replicas[${i}].interface`, (v) => (f) => { f.replicas[i].interface = v; })} />
          <div class="row-actions">
            <button type="button" class="btn small" disabled=${i === 0} onClick=${() => update((f) => { [f.replicas[i - 1], f.replicas[i]] = [f.replicas[i], f.replicas[i - 1]]; })} aria-label=${`Move replica ${r.name || i + 1} up`}>↑</button>
            <button type="button" class="btn small" onClick=${() => update((f) => { f.replicas.splice(i, 1); })} aria-label=${`Remove replica ${r.name || i + 1}`}>Remove</button>
          </div>
        </div>`)}
        <button type="button" class="btn small" onClick=${() => update((f) => { f.replicas.push({ name: '', interface: '' }); })}>Add replica</button>
      </fieldset>

      <fieldset><legend>Services</legend>
        ${form.services.map((s, i) => html`<div class="row" key=${i}>
          <${Input} path=${`services[${i}].address`} label="Address" value=${s.address} errors=${errors} placeholder="198.18.0.10" onInput=${setField(`services[${i}].address`, (v) => (f) => { f.services[i].address = v; })} />
          <${Input} path=${`services[${i}].ports`} label="TCP ports" value=${s.ports} errors=${errors} placeholder="80, 443" onInput=${setField(`services[${i}].ports`, (v) => (f) => { f.services[i].ports = v; })} />
          <label class="field" for=${fid(`services[${i}].release`)}>Release
            <select id=${fid(`services[${i}].release`)} data-field=${`services[${i}].release`} value=${s.release} onChange=${(e) => { const v = e.currentTarget.value; update((f) => { f.services[i].release = v; }); }}>
              <option value="">matched (default)</option><option value="matched">matched</option><option value="immediate">immediate</option>
            </select>
            <${FieldError} id=${`${fid(`services[${i}].release`)}-err`} text=${errors[`services[${i}].release`]} />
          </label>
          <div class="row-actions"><button type="button" class="btn small" onClick=${() => update((f) => { f.services.splice(i, 1); })} aria-label=${`Remove service ${s.address || i + 1}`}>Remove</button></div>
        </div>`)}
        <button type="button" class="btn small" onClick=${() => update((f) => { f.services.push({ address: '', ports: '', release: '' }); })}>Add service</button>
      </fieldset>

      <fieldset><legend>Health checks <span class="muted">(empty: default)</span></legend>
        <div class="grid">${HEALTH_FIELDS.map((h) => html`<${Input} key=${h.key} path=${`health.${h.key}`} label=${h.label} value=${form.health[h.key]} errors=${errors} placeholder=${h.def} help=${h.help}
          onInput=${setField(`health.${h.key}`, (v) => (f) => { f.health[h.key] = v; })} />`)}</div>
      </fieldset>

      <details><summary>Addresses</summary>
        <div class="grid">
          <${Input} path="vip_mac" label="Service MAC address" value=${form.vip_mac} errors=${errors} placeholder="the uplink's own" onInput=${setField('vip_mac', (v) => (f) => { f.vip_mac = v; })} />
          <${Input} path="probe_source" label="Probe source address" value=${form.probe_source} errors=${errors} placeholder="derived" onInput=${setField('probe_source', (v) => (f) => { f.probe_source = v; })} />
        </div>
      </details>

      <details><summary>Dataplane</summary>
        <div class="grid">
          <${Input} path="loops" label="Loops" value=${form.loops} errors=${errors} placeholder="one per core beyond two"
            help="Cores the dataplane spreads connections over. A change restarts the dataplane." onInput=${setField('loops', (v) => (f) => { f.loops = v; })} />
        </div>
      </details>

      <div class="actions">
        <button type="button" class="btn" onClick=${() => load()} disabled=${busy}>Discard edits</button>
        <button type="submit" class="btn primary" disabled=${busy || !!pending} data-testid="review">Review changes</button>
      </div>
      ${pending && html`<p class="muted">A change awaits confirmation: confirm or roll it back before the next one.</p>`}
    </form>

    ${review && html`<section class="card review" aria-labelledby="review-title" data-testid="review-panel">
      <h3 id="review-title">Changes to apply</h3>
      <${Diff} diff=${review.diff} />
      ${review.restarts && html`<p class="alarm warn">These changes restart the dataplane: every live connection is dropped.</p>`}
      <div class="row">
        <label class="field">Roll back unless confirmed within
          <select value=${timeout} onChange=${(e) => setTimeoutSel(e.currentTarget.value)} data-testid="confirm-timeout">
            ${TIMEOUTS.map((t) => html`<option value=${t}>${t}</option>`)}</select></label>
        <label class="field wide">Comment (optional)<input value=${comment} maxlength="200" onInput=${(e) => setComment(e.currentTarget.value)} /></label>
      </div>
      <div class="actions">
        <button class="btn" onClick=${() => setReview(null)}>Back to the form</button>
        <button class="btn primary" onClick=${apply} disabled=${busy} data-testid="apply">Apply safely</button>
      </div>
    </section>`}

    <h2>History</h2>
    <${History} current=${state.version} onChanged=${() => { load(); live.refresh(); }} />
  </div>`;
}
