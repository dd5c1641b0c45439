// System: version and uptime, firmware slots and updates, password, API
// tokens, the HTTPS certificate, reboot and factory reset.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { html, KV, FieldError, confirmAction, notify, useInterval } from '../ui.js';
import { slotText, updateSummary, uploadBundle } from '../lib/update.js';
import { checkNewPassword } from '../lib/password.js';
import { fmtDuration, fmtTime } from '../lib/format.js';

/** PasswordForm changes the admin password; forced after first boot. */
export function PasswordForm({ forced, current = '', onChanged }) {
  const [v, setV] = useState({ current, next: '', repeat: '' });
  const [err, setErr] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setV({ ...v, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    const problem = checkNewPassword(v.current, v.next, v.repeat);
    if (problem) return setErr({ [v.next !== v.repeat && v.next.length >= 12 ? 'repeat' : 'next']: problem });
    setBusy(true);
    try {
      await api.put('/system/password', { current: v.current, new: v.next });
      setErr({});
      setV({ current: '', next: '', repeat: '' });
      onChanged(v.next);
    } catch (x) {
      setErr({ [x.field === 'current' ? 'current' : x.field === 'new' ? 'next' : 'form']: x.message });
    } finally {
      setBusy(false);
    }
  };
  const field = (k, label, auto) => html`<label class=${`field ${err[k] ? 'invalid' : ''}`}>${label}
    <input type="password" name=${k} value=${v[k]} onInput=${set(k)} autocomplete=${auto} required aria-invalid=${err[k] ? 'true' : 'false'} aria-describedby=${err[k] ? `pw-${k}-err` : undefined} />
    <${FieldError} id=${`pw-${k}-err`} text=${err[k]} /></label>`;
  return html`<form class="stack narrow" onSubmit=${submit} data-testid="password-form">
    ${forced && html`<p class="alarm warn">This is the password generated on first start, which is also stored in a file on the appliance. Choose your own before going on.</p>`}
    ${field('current', forced ? 'Generated password' : 'Current password', 'current-password')}
    ${field('next', 'New password (at least 12 characters)', 'new-password')}
    ${field('repeat', 'New password again', 'new-password')}
    <${FieldError} id="pw-form-err" text=${err.form} />
    <div class="actions"><button class="btn primary" type="submit" disabled=${busy}>Change password</button></div>
  </form>`;
}

function Tokens() {
  const [list, setList] = useState([]);
  const [name, setName] = useState('');
  const [created, setCreated] = useState(null);
  const [err, setErr] = useState('');
  const load = async () => setList((await api.get('/system/tokens')).tokens);
  useEffect(() => {
    load().catch((e) => setErr(e.message));
  }, []);
  const create = async (e) => {
    e.preventDefault();
    try {
      setCreated(await api.post('/system/tokens', { name: name.trim() }));
      setName('');
      setErr('');
      load();
    } catch (x) {
      setErr(x.message);
    }
  };
  const revoke = async (t) => {
    const ok = await confirmAction({ title: `Revoke token "${t.name}"?`, body: html`<p>Programs using it are refused from their next request on.</p>`, action: 'Revoke', danger: true });
    if (!ok) return;
    try {
      await api.del(`/system/tokens/${encodeURIComponent(t.id)}`);
      notify(`Token "${t.name}" revoked.`);
      if (created && created.id === t.id) setCreated(null);
      load();
    } catch (x) {
      notify(x.message, 'error');
    }
  };
  return html`
    ${created && html`<div class="card secret" role="status" data-testid="new-token">
      <p>Token <strong>${created.name}</strong> created. Copy it now: it is not shown again.</p>
      <p><code class="token">${created.token}</code>
        <button class="btn small" onClick=${() => navigator.clipboard?.writeText(created.token).then(() => notify('Copied.'), () => notify('Copying failed: select the text.', 'error'))}>Copy</button>
        <button class="btn small" onClick=${() => setCreated(null)}>Done</button></p>
    </div>`}
    <div class="table-wrap"><table class="data" data-testid="tokens">
      <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${list.length === 0 ? html`<tr><td colspan="5" class="muted">No tokens.</td></tr>` : list.map((t) => html`<tr key=${t.id}>
        <td>${t.name}</td><td><code>${t.id}</code></td><td>${fmtTime(t.created)}</td><td>${t.last_used ? fmtTime(t.last_used) : 'never'}</td>
        <td class="row-actions"><button class="btn small" onClick=${() => revoke(t)} aria-label=${`Revoke token ${t.name}`}>Revoke</button></td></tr>`)}</tbody>
    </table></div>
    <form class="row" onSubmit=${create}>
      <label class="field">New token's name<input value=${name} onInput=${(e) => setName(e.currentTarget.value)} maxlength="64" placeholder="ci" required /></label>
      <div class="row-actions"><button class="btn" type="submit">Create token</button></div>
    </form>
    <${FieldError} id="tok-err" text=${err} />`;
}

function Certificate() {
  const [info, setInfo] = useState(null);
  const [err, setErr] = useState('');
  const [pem, setPem] = useState({ cert: '', key: '' });
  const load = async () => setInfo(await api.get('/system/tls'));
  useEffect(() => {
    load().catch((e) => setErr(e.message));
  }, []);
  const readFile = (k) => async (e) => {
    const f = e.currentTarget.files[0];
    const text = f ? await f.text() : '';
    setPem((p) => ({ ...p, [k]: text }));
  };
  const upload = async (e) => {
    e.preventDefault();
    const ok = await confirmAction({ title: 'Install this certificate?', body: html`<p>The appliance uses it from the next HTTPS connection on. Browsers that trusted the old one will warn until they trust the new one.</p>`, action: 'Install' });
    if (!ok) return;
    try {
      setInfo(await api.put('/system/tls', { cert_pem: pem.cert, key_pem: pem.key }));
      setPem({ cert: '', key: '' });
      setErr('');
      notify('Certificate installed.');
    } catch (x) {
      setErr(x.message);
    }
  };
  return html`
    ${info && html`<${KV} rows=${[
      ['Subject', info.subject], ['Issuer', info.issuer + (info.self_signed ? ' (self-signed)' : '')],
      ['Valid', `${fmtTime(info.not_before)} to ${fmtTime(info.not_after)}`],
      ['Names', [...(info.dns_names || []), ...(info.ip_addresses || [])].join(', ')],
      ['SHA-256', html`<code class="wrap">${info.sha256}</code>`],
    ]} />`}
    <form class="stack" onSubmit=${upload}>
      <div class="row">
        <label class="field">Certificate (PEM, with its chain)<input type="file" accept=".pem,.crt,.cer,text/plain" onChange=${readFile('cert')} /></label>
        <label class="field">Private key (PEM)<input type="file" accept=".pem,.key,text/plain" onChange=${readFile('key')} /></label>
      </div>
      <${FieldError} id="tls-err" text=${err} />
      <div class="actions"><button class="btn" type="submit" disabled=${!pem.cert || !pem.key}>Upload certificate</button></div>
    </form>`;
}

// waitForReturn polls the health route until the appliance answers again.
async function waitForReturn() {
  await new Promise((r) => setTimeout(r, 5000));
  for (let i = 0; i < 120; i++) {
    try {
      const res = await fetch('/api/v1/health', { cache: 'no-store' });
      if (res.ok) return true;
    } catch {
      // Still down.
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  return false;
}

/**
 * Firmware shows the A/B slots and installs an update bundle: upload with
 * progress, RAUC's install progress, then a reboot into the new slot on
 * trial (committed once the daemon is healthy, else rolled back by the
 * boot loader).
 */
function Firmware() {
  const [slots, setSlots] = useState(null);
  const [unavailable, setUnavailable] = useState('');
  const [st, setSt] = useState(null);
  const [file, setFile] = useState(null);
  const [sent, setSent] = useState(null);
  const [err, setErr] = useState('');
  const [rebooting, setRebooting] = useState('');
  const loadSlots = async () => {
    try {
      setSlots(await api.get('/system/slots'));
      setUnavailable('');
    } catch (e) {
      if (e.status === 503) setUnavailable(e.message);
      else setErr(e.message);
    }
  };
  const loadState = async () => {
    const next = await api.get('/system/update');
    setSt((prev) => {
      // The install just ended: the slots changed.
      if (prev && (prev.state === 'installing' || prev.state === 'receiving') && next.state !== prev.state) loadSlots();
      return next;
    });
  };
  useEffect(() => {
    loadSlots();
    loadState().catch((e) => setErr(e.message));
  }, []);
  const sum = updateSummary(st);
  useInterval(() => {
    if (sum.busy && sent === null) loadState().catch(() => {});
  }, 1000);
  const install = async (e) => {
    e.preventDefault();
    if (!file) return;
    const ok = await confirmAction({
      title: `Install ${file.name}?`,
      body: html`<p>The bundle is written to the slot that is not running; the running firmware and live connections are not touched. It runs only after a reboot, on trial.</p>`,
      action: 'Install',
    });
    if (!ok) return;
    setErr('');
    setSent(0);
    try {
      setSt(await uploadBundle(file, api.csrf, (n) => setSent(n)));
    } catch (x) {
      setErr(x.message);
      loadState().catch(() => {});
    } finally {
      setSent(null);
    }
  };
  const reboot = async () => {
    const ok = await confirmAction({
      title: 'Reboot into the new firmware?',
      body: html`<p>Every live connection is dropped while the appliance restarts. The new firmware runs on trial: it is committed once the daemon is healthy; if it is not, the appliance reboots into the current firmware by itself.</p>`,
      action: 'Reboot to trial', danger: true,
    });
    if (!ok) return;
    try {
      await api.post('/system/reboot');
      setRebooting('Rebooting into the new firmware… this page reconnects when the appliance is back.');
      if (await waitForReturn()) location.reload();
    } catch (x) {
      notify(x.message, 'error');
    }
  };
  if (unavailable) return html`<p class="muted" data-testid="slots-unavailable">${unavailable}</p>`;
  const uploading = sent !== null;
  return html`
    ${slots && html`<div class="table-wrap"><table class="data" data-testid="slots">
      <thead><tr><th scope="col">Slot</th><th scope="col">State</th><th scope="col">Version</th><th scope="col">Running</th><th scope="col">Next boot</th></tr></thead>
      <tbody>${slots.slots.map((s) => html`<tr key=${s.slot}>
        <td>${s.slot}</td><td>${slotText(s)}</td><td>${s.version || html`<span class="muted">none</span>`}</td>
        <td>${s.booted ? 'yes' : ''}</td><td>${s.slot === slots.next ? 'yes' : ''}</td></tr>`)}</tbody>
    </table></div>`}
    ${slots && slots.trial && html`<p class="alarm warn" role="status">Slot ${slots.booted} runs on trial: it is committed once the daemon is healthy; otherwise the appliance goes back to slot ${slots.booted === 'A' ? 'B' : 'A'} by itself.</p>`}
    <form class="stack" onSubmit=${install} data-testid="update-form">
      <div class="row">
        <label class="field">Update bundle (.raucb, signed)<input type="file" accept=".raucb" data-testid="bundle-file" onChange=${(e) => setFile(e.currentTarget.files[0] || null)} disabled=${uploading || sum.busy} /></label>
        <div class="row-actions"><button class="btn primary" type="submit" disabled=${!file || uploading || sum.busy}>Install update</button></div>
      </div>
      ${uploading && html`<p role="status">Uploading: ${file && file.size ? Math.floor((100 * sent) / file.size) : 0}%<br /><progress max=${file ? file.size : 1} value=${sent} aria-label="Upload progress"></progress></p>`}
      ${!uploading && sum.text && html`<p class=${`alarm ${sum.level === 'error' ? 'crit' : 'info'}`} role="status" data-testid="update-state">${sum.text}
        ${sum.percent != null && sum.busy && html`<br /><progress max="100" value=${sum.percent} aria-label="Install progress"></progress>`}</p>`}
      <${FieldError} id="update-err" text=${err} />
    </form>
    ${sum.reboot && html`<div class="actions"><button class="btn danger" onClick=${reboot} data-testid="reboot-trial">Reboot to run the new firmware on trial…</button></div>`}
    ${rebooting && html`<p class="alarm warn" role="status">${rebooting}</p>`}`;
}

function Danger() {
  const [state, setState] = useState('');
  const reboot = async () => {
    const ok = await confirmAction({ title: 'Reboot the appliance?', body: html`<p>Every live connection is dropped and the service is down until the appliance is back (usually under a minute).</p>`, action: 'Reboot', danger: true });
    if (!ok) return;
    try {
      await api.post('/system/reboot');
      setState('Rebooting… this page reconnects when the appliance is back.');
      if (await waitForReturn()) location.reload();
    } catch (e) {
      notify(e.message, 'error');
    }
  };
  const reset = async () => {
    const ok = await confirmAction({
      title: 'Erase everything and reboot?',
      body: html`<p>The factory reset erases the configuration history, API tokens, password, certificate and event log, then reboots. A new password is generated on the next start: you need console access to read it.</p>`,
      action: 'Factory reset', danger: true, typed: 'factory-reset',
    });
    if (!ok) return;
    try {
      await api.post('/system/factory-reset', { confirm: 'factory-reset' });
      setState('Resetting… the appliance reboots with factory settings.');
    } catch (e) {
      notify(e.message, 'error');
    }
  };
  return html`<div class="danger-zone">
    ${state && html`<p class="alarm warn" role="status">${state}</p>`}
    <div class="actions"><button class="btn danger" onClick=${reboot}>Reboot…</button><button class="btn danger" onClick=${reset}>Factory reset…</button></div>
  </div>`;
}

/** System is the system page. */
export function System({ live, onPasswordChanged }) {
  const st = live.status;
  const now = Date.now() + api.offset;
  return html`
    <section class="card" aria-labelledby="sys-title"><h2 id="sys-title">Appliance</h2>
      ${st && html`<${KV} rows=${[
        ['Firmware version', html`<span data-testid="version">${st.version}</span>`],
        ['Host name', st.hostname],
        ['Up for', html`<span title=${fmtTime(st.started, now)}>${fmtDuration(st.uptime_seconds)}</span>`],
        ['Dataplane', `${st.dataplane.running ? 'running' : 'stopped'} since ${fmtTime(st.dataplane.started, now)}, ${st.dataplane.restarts} restart${st.dataplane.restarts === 1 ? '' : 's'}`],
        ['Configuration', `version ${st.config.version}${st.config.pending ? ' (awaiting confirmation)' : ''}`],
        ['Drops', Object.entries(st.drops || {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'],
      ]} />`}
      <p class="small"><a href="/api/v1/openapi.json">OpenAPI document</a> · <a href="/metrics">Prometheus metrics</a> · <a href="/licenses.txt">Licences of the dashboard's libraries</a></p>
    </section>
    <section class="card" aria-labelledby="fw-title"><h2 id="fw-title">Firmware</h2><${Firmware} /></section>
    <section class="card" aria-labelledby="pw-title"><h2 id="pw-title">Admin password</h2><${PasswordForm} onChanged=${onPasswordChanged} /></section>
    <section class="card" aria-labelledby="tok-title"><h2 id="tok-title">API tokens</h2><${Tokens} /></section>
    <section class="card" aria-labelledby="tls-title"><h2 id="tls-title">HTTPS certificate</h2><${Certificate} /></section>
    <section class="card" aria-labelledby="danger-title"><h2 id="danger-title">Reboot and reset</h2><${Danger} /></section>`;
}
