// The ftbridge dashboard: login, the forced change of the generated
// password, and the shell around the pages (navigation, theme, the
// pending-configuration banner). Pages are chosen by the URL's hash so
// that the server serves one document for all of them.

import { render } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { useLive } from './live.js';
import { html, DialogHost, NoticeHost, confirmAction, notify } from './ui.js';
import { Overview } from './views/overview.js';
import { Connections } from './views/connections.js';
import { Events } from './views/events.js';
import { Config } from './views/config.js';
import { System, PasswordForm } from './views/system.js';
import { mustChangePassword } from './lib/password.js';
import { remaining } from './lib/clock.js';
import { redundancy } from './lib/alarms.js';

const PAGES = [
  ['overview', 'Overview'],
  ['connections', 'Connections'],
  ['events', 'Events'],
  ['config', 'Configuration'],
  ['system', 'System'],
];

// The forced password change survives a reload within the tab.
const MUST_CHANGE = 'ftb-must-change-password';

function pageFromHash() {
  const p = location.hash.replace(/^#\/?/, '');
  return PAGES.some(([id]) => id === p) ? p : 'overview';
}

function Login({ onLogin, message }) {
  const [user, setUser] = useState('admin');
  const [pw, setPw] = useState('');
  const [err, setErr] = useState(message || '');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const res = await api.post('/auth/login', { username: user, password: pw });
      api.csrf = res.csrf_token;
      onLogin(res, pw);
    } catch (x) {
      setErr(x.status === 401 ? 'Wrong user name or password.' : x.message);
      setPw('');
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login" id="main">
    <form class="card stack" onSubmit=${submit} aria-labelledby="login-title" data-testid="login-form">
      <h1 id="login-title"><span class="logo" aria-hidden="true">⇄</span> ftbridge</h1>
      <label class="field">User<input name="username" value=${user} onInput=${(e) => setUser(e.currentTarget.value)} autocomplete="username" required /></label>
      <label class="field">Password<input name="password" type="password" value=${pw} onInput=${(e) => setPw(e.currentTarget.value)} autocomplete="current-password" required autofocus /></label>
      ${err && html`<p class="field-error" role="alert" data-testid="login-error">${err}</p>`}
      <button class="btn primary" type="submit" disabled=${busy}>Log in</button>
      <p class="muted small">On first start the appliance generates the password; the serial console shows it.</p>
    </form>
  </main>`;
}

function PendingBanner({ live }) {
  const p = live.config?.pending;
  const [, tick] = useState(0);
  useEffect(() => {
    if (!p) return undefined;
    const t = setInterval(() => tick((n) => n + 1), 250);
    return () => clearInterval(t);
  }, [p && p.version]);
  if (!p || !live.status?.config?.pending) return null;
  const left = remaining(p.confirm_by, Date.now(), api.offset);
  const act = async (what) => {
    try {
      if (what === 'confirm') {
        await api.post('/config/confirm');
        notify(`Version ${p.version} confirmed.`);
      } else {
        if (!(await confirmAction({ title: 'Roll back now?', body: html`<p>Version ${p.previous} is applied again.</p>`, action: 'Roll back', danger: true }))) return;
        await api.post('/config/rollback', {});
        notify(`Rolled back to version ${p.previous}.`);
      }
    } catch (e) {
      notify(e.message, 'error');
    }
    live.refresh();
  };
  return html`<div class="pending" role="alert" data-testid="pending-banner">
    <p>Configuration version ${p.version} is on trial${p.dataplane_restarted ? ' (the dataplane restarted)' : ''}.
      It rolls back to version ${p.previous} in <strong data-testid="countdown">${left} s</strong> unless you confirm it.</p>
    <div class="actions">
      <button class="btn primary" onClick=${() => act('confirm')} data-testid="confirm-config">Keep this configuration</button>
      <button class="btn" onClick=${() => act('rollback')}>Roll back now</button>
    </div>
  </div>`;
}

function useTheme() {
  const [theme, setTheme] = useState(() => localStorage.getItem('ftb-theme') || 'auto');
  const [dark, setDark] = useState(() => matchMedia('(prefers-color-scheme: dark)').matches);
  useEffect(() => {
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const on = () => setDark(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const effective = theme === 'auto' ? (dark ? 'dark' : 'light') : theme;
  // A layout effect runs before the charts' effects, which read the
  // theme's colours.
  useLayoutEffect(() => {
    document.documentElement.dataset.theme = effective;
    localStorage.setItem('ftb-theme', theme);
  }, [theme, effective]);
  return [theme, effective, setTheme];
}

function Shell({ onLogout, onPasswordChanged }) {
  const [page, setPage] = useState(pageFromHash());
  const [theme, effective, setTheme] = useTheme();
  const live = useLive(true);
  useEffect(() => {
    const on = () => {
      setPage(pageFromHash());
      document.getElementById('main')?.focus({ preventScroll: true });
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const title = PAGES.find(([id]) => id === page)[1];
  useEffect(() => {
    const red = live.replicas ? redundancy(live.replicas).state : '';
    document.title = `${red && red !== 'intact' ? `⚠ ${red} · ` : ''}${title} · ftbridge${live.status ? ` ${live.status.hostname}` : ''}`;
  }, [title, live.replicas, live.status]);

  const onAction = async (r, action) => {
    const text = {
      drain: html`<p>Replica <strong>${r.name}</strong> keeps its ${r.connections} connections but gets no new ones.</p>`,
      disable: html`<p>Replica <strong>${r.name}</strong> is taken out of every connection at once; a backup takes over where there is one.${redundancy(live.replicas).healthy.length <= 1 && r.health === 'up' ? html` <strong>It is the only healthy replica: its connections are lost.</strong>` : ''}</p>`,
      enable: html`<p>Replica <strong>${r.name}</strong> returns to normal service.</p>`,
      promote: html`<p>Replica <strong>${r.name}</strong> becomes the preferred primary, also of its live connections (a planned switchover).</p>`,
    }[action];
    const ok = await confirmAction({ title: `${action[0].toUpperCase() + action.slice(1)} replica ${r.name}?`, body: text, action: `${action[0].toUpperCase() + action.slice(1)} ${r.name}`, danger: action === 'disable' });
    if (!ok) return;
    try {
      await api.post(`/replicas/${encodeURIComponent(r.name)}/${action}`);
      notify(`Replica ${r.name}: ${action} done.`);
    } catch (e) {
      notify(e.message, 'error');
    }
    live.refresh();
  };

  const view = {
    overview: () => html`<${Overview} live=${{ ...live, offset: api.offset }} theme=${effective} onAction=${onAction} />`,
    connections: () => html`<${Connections} replicas=${live.replicas} />`,
    events: () => html`<${Events} replicas=${live.replicas} />`,
    config: () => html`<${Config} live=${live} />`,
    system: () => html`<${System} live=${live} onPasswordChanged=${onPasswordChanged} />`,
  }[page];

  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <div class="sticky">
    <header class="top">
      <a class="brand" href="#/overview"><span class="logo" aria-hidden="true">⇄</span> ftbridge <span class="host">${live.status?.hostname || ''}</span></a>
      <nav aria-label="Pages"><ul>${PAGES.map(([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${id === page ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <div class="top-actions">
        <span class=${`live-dot ${live.error ? 'reconnecting' : live.stream}`} title=${live.error || `event stream: ${live.stream}`} data-testid="conn-state"><span class="sr-only">${live.error ? 'Not connected' : `Event stream ${live.stream}`}</span></span>
        <label class="theme"><span class="sr-only">Theme</span>
          <select value=${theme} onChange=${(e) => setTheme(e.currentTarget.value)} aria-label="Theme">
            <option value="auto">Auto</option><option value="light">Light</option><option value="dark">Dark</option></select></label>
        <button class="btn small" onClick=${onLogout}>Log out</button>
      </div>
    </header>
    <${PendingBanner} live=${live} />
    ${live.error && html`<p class="offline" role="alert">The appliance does not answer: ${live.error}</p>`}
    </div>
    <main id="main" tabindex="-1" data-page=${page}>
      <h1>${title}</h1>
      ${view()}
    </main>`;
}

function App() {
  const [phase, setPhase] = useState('loading');
  const [message, setMessage] = useState('');
  // The password just typed at the login, to fill in the forced change
  // (kept in memory only, and only until then).
  const [typedPw, setTypedPw] = useState('');
  useEffect(() => {
    api.onUnauthorized = () => {
      api.csrf = '';
      setMessage('Your session ended. Log in again.');
      setPhase('login');
    };
    api.get('/auth/session').then(
      (s) => {
        api.csrf = s.csrf_token || '';
        setPhase(sessionStorage.getItem(MUST_CHANGE) ? 'change' : 'app');
      },
      () => setPhase('login'),
    );
  }, []);
  const loggedIn = (res, pw) => {
    setMessage('');
    if (mustChangePassword(res, pw)) {
      sessionStorage.setItem(MUST_CHANGE, '1');
      setTypedPw(pw);
      setPhase('change');
    } else {
      setPhase('app');
    }
  };
  // Changing the password ends every session (firmware/auth), so log in
  // again with the new one.
  const passwordChanged = async (pw) => {
    sessionStorage.removeItem(MUST_CHANGE);
    setTypedPw('');
    try {
      const res = await api.post('/auth/login', { username: 'admin', password: pw });
      api.csrf = res.csrf_token;
      notify('Password changed.');
      setPhase('app');
    } catch {
      setMessage('Password changed. Log in with the new one.');
      setPhase('login');
    }
  };
  const logout = async () => {
    try {
      await api.post('/auth/logout');
    } catch {
      // Logged out anyway.
    }
    api.csrf = '';
    sessionStorage.removeItem(MUST_CHANGE);
    setMessage('');
    setPhase('login');
  };
  let body;
  if (phase === 'loading') body = html`<p class="muted center">Loading…</p>`;
  else if (phase === 'login') body = html`<${Login} onLogin=${loggedIn} message=${message} />`;
  else if (phase === 'change')
    body = html`<main class="login" id="main"><div class="card"><h1>Choose a password</h1><${PasswordForm} forced=${true} current=${typedPw} onChanged=${passwordChanged} />
      <p><button class="btn small" onClick=${logout}>Log out</button></p></div></main>`;
  else body = html`<${Shell} onLogout=${logout} onPasswordChanged=${passwordChanged} />`;
  return html`${body}<${DialogHost} /><${NoticeHost} />`;
}

// Apply a chosen theme before the first paint, also on the login page.
const storedTheme = localStorage.getItem('ftb-theme');
if (storedTheme === 'light' || storedTheme === 'dark') document.documentElement.dataset.theme = storedTheme;

render(html`<${App} />`, document.getElementById('app'));
