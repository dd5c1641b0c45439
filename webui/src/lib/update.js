// Firmware updates on the system page: what the install state and the
// slots mean in words, and the bundle upload (XMLHttpRequest, since fetch
// reports no upload progress and bundles are tens of MiB).

/** SLOT_STATES says what each slot state means to an operator. */
export const SLOT_STATES = {
  committed: 'committed',
  pending: 'installed, boots next on trial',
  trial: 'on trial: committed once the daemon is healthy',
  bad: 'not bootable (failed its trial, or being written)',
  empty: 'empty',
};

/** slotText describes one slot of GET /system/slots. */
export function slotText(s) {
  return SLOT_STATES[s.state] || s.state;
}

/**
 * updateSummary turns GET /system/update into what the page shows: a
 * sentence, a level for its colour, whether an install runs (no second
 * upload then), the progress bar's value (null: none) and whether the
 * reboot button is offered.
 */
export function updateSummary(st) {
  const s = st || { state: 'idle' };
  switch (s.state) {
    case 'receiving': {
      const pct = s.size_bytes > 0 ? Math.min(100, Math.floor((100 * (s.received_bytes || 0)) / s.size_bytes)) : null;
      return { text: `Receiving the bundle${pct == null ? '' : `: ${pct}%`}…`, level: 'info', busy: true, percent: pct, reboot: false };
    }
    case 'installing':
      return { text: `Installing: ${s.percent || 0}%${s.step ? ` (${s.step})` : ''}`, level: 'info', busy: true, percent: s.percent || 0, reboot: false };
    case 'installed':
      return {
        text: `Installed into slot ${s.slot || 'the other slot'}. Reboot to run it on trial: it is committed once the daemon is healthy, else the appliance goes back to the running firmware by itself.`,
        level: 'ok', busy: false, percent: 100, reboot: true,
      };
    case 'failed':
      return { text: `The update failed: ${s.error || 'no reason given'}. Nothing was changed; the running firmware stays.`, level: 'error', busy: false, percent: null, reboot: false };
    default:
      return { text: '', level: 'info', busy: false, percent: null, reboot: false };
  }
}

/**
 * uploadBundle sends file as the body of POST /api/v1/system/update and
 * resolves with the install state the API answers (202), calling
 * onProgress(sent, total) as the upload goes. It rejects with
 * {status, code, message} on an error answer or a lost connection.
 * newXHR is for tests.
 */
export function uploadBundle(file, csrf, onProgress, newXHR = () => new XMLHttpRequest()) {
  return new Promise((resolve, reject) => {
    const x = newXHR();
    x.open('POST', '/api/v1/system/update');
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.setRequestHeader('Accept', 'application/json');
    if (csrf) x.setRequestHeader('X-CSRF-Token', csrf);
    x.withCredentials = true;
    if (x.upload && onProgress) x.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    x.onload = () => {
      let data = null;
      try {
        data = JSON.parse(x.responseText);
      } catch {
        data = null;
      }
      if (x.status >= 200 && x.status < 300) return resolve(data);
      const e = (data && data.error) || {};
      reject({ status: x.status, code: e.code || 'http', message: e.message || `HTTP ${x.status}` });
    };
    x.onerror = () => reject({ status: 0, code: 'network', message: 'The upload broke off (the appliance did not answer).' });
    x.send(file);
  });
}
