// Shared building blocks of the views: the html template tag, the
// confirmation dialog, notices, and small display components.

import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

/** html is htm bound to Preact: JSX-like templates without a compiler. */
export const html = htm.bind(h);

// The dialog and notices are app-wide: one host each, fed through these
// module-level setters that the hosts install when they mount.
let openDialog = null;
let pushNotice = null;

/**
 * confirmAction asks the operator to confirm and resolves true or false.
 * opts: {title, body, action (button text), danger, typed (a word the
 * operator must type to enable the button)}.
 */
export function confirmAction(opts) {
  return new Promise((resolve) => {
    if (!openDialog) return resolve(false);
    openDialog({ ...opts, resolve });
  });
}

/** notify shows a short notice; level is 'ok', 'error' or 'info'. */
export function notify(text, level = 'ok') {
  if (pushNotice) pushNotice({ text, level, id: Math.random() });
}

/** DialogHost renders the confirmation dialog as a modal <dialog>. */
export function DialogHost() {
  const [d, setD] = useState(null);
  const [typed, setTyped] = useState('');
  const ref = useRef(null);
  useEffect(() => {
    openDialog = (opts) => {
      setTyped('');
      setD(opts);
    };
    return () => {
      openDialog = null;
    };
  }, []);
  useEffect(() => {
    const el = ref.current;
    if (d && el && !el.open) el.showModal();
  }, [d]);
  const close = (ok) => {
    const el = ref.current;
    if (el && el.open) el.close();
    if (d) d.resolve(ok);
    setD(null);
  };
  const ready = !d || !d.typed || typed === d.typed;
  return html`
    <dialog ref=${ref} class="confirm" aria-labelledby="dlg-title" onCancel=${(e) => { e.preventDefault(); close(false); }}>
      ${d && html`
        <form method="dialog" onSubmit=${(e) => { e.preventDefault(); if (ready) close(true); }}>
          <h2 id="dlg-title">${d.title}</h2>
          <div class="dlg-body">${d.body}</div>
          ${d.typed && html`
            <label class="field">Type <code>${d.typed}</code> to confirm
              <input autocomplete="off" spellcheck="false" value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} data-testid="typed-confirm" />
            </label>`}
          <div class="actions">
            <button type="button" class="btn" onClick=${() => close(false)} autofocus=${!d.typed}>Cancel</button>
            <button type="submit" class=${`btn ${d.danger ? 'danger' : 'primary'}`} disabled=${!ready} data-testid="confirm-ok">${d.action || 'Confirm'}</button>
          </div>
        </form>`}
    </dialog>`;
}

/** NoticeHost shows notices in a polite live region for screen readers. */
export function NoticeHost() {
  const [list, setList] = useState([]);
  useEffect(() => {
    pushNotice = (n) => {
      setList((l) => [...l.slice(-3), n]);
      setTimeout(() => setList((l) => l.filter((x) => x !== n)), n.level === 'error' ? 8000 : 4000);
    };
    return () => {
      pushNotice = null;
    };
  }, []);
  return html`<div class="notices" role="status" aria-live="polite">
    ${list.map((n) => html`<div key=${n.id} class=${`notice ${n.level}`}>${n.text}</div>`)}
  </div>`;
}

/** Badge is a small label; kind picks its colour (text says it too). */
export function Badge({ kind = '', children, title }) {
  return html`<span class=${`badge ${kind}`} title=${title}>${children}</span>`;
}

/** KV renders a definition list of [label, value] pairs. */
export function KV({ rows, cls = '' }) {
  return html`<dl class=${`kv ${cls}`}>${rows.filter(Boolean).map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}

/** FieldError shows an error under an input, linked by id for readers. */
export function FieldError({ id, text }) {
  return text ? html`<p class="field-error" id=${id} role="alert">${text}</p>` : null;
}

/** useInterval runs fn every ms while mounted (and once at once if now). */
export function useInterval(fn, ms, now = false) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (now) saved.current();
    const t = setInterval(() => saved.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/** download offers text as a file download. */
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
