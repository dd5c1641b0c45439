// The management API client: JSON in and out, the session's CSRF token on
// every change, the server's clock offset, and one place that notices a
// lost session.

import { ClockOffset } from './lib/clock.js';

/** ApiError is an API error answer (docs/api.md, "Errors"). */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

const BASE = '/api/v1';

const clock = new ClockOffset();

export const api = {
  csrf: '',
  /** offset is the server's clock minus ours, in ms. */
  get offset() {
    return clock.value();
  },
  /** onUnauthorized runs when an answer says the session is gone. */
  onUnauthorized: () => {},

  /**
   * call makes a request and returns the decoded JSON answer; it throws an
   * ApiError for error answers and network failures (status 0).
   */
  async call(method, path, body, query) {
    let url = BASE + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== '' && v != null && v !== false) q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network', `The appliance did not answer (${e.message}).`);
    }
    clock.add(res.headers.get('Date'), Date.now());
    let data = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      if (res.status === 401 && path !== '/auth/login') this.onUnauthorized();
      throw new ApiError(res.status, e.code || 'http', e.message || `${res.status} ${res.statusText}`, e.field);
    }
    return data;
  },
  get(path, query) {
    return this.call('GET', path, undefined, query);
  },
  post(path, body) {
    return this.call('POST', path, body);
  },
  put(path, body, query) {
    return this.call('PUT', path, body, query);
  },
  del(path) {
    return this.call('DELETE', path);
  },
};
