// Browser stand-ins that gotrue-js needs under Node 20 (spec/clients.md §4a).
// Import this module BEFORE importing any gotrue-js build.
//
// - `window`: gotrue-js only touches localStorage when `typeof window !== 'undefined'`,
//   and 0.9.x decodes the JWT with `window.atob` (without it `expires_at` is NaN and it never refreshes).
// - `addEventListener`: 1.0.1 registers a `storage` listener on window.
// - `localStorage`: Map-backed.
// - `fetch`: wrapped by the shared recording spy (tests/support/fetch-recorder.mjs).

const store = new Map();

export const localStorage = {
  getItem: (key) => (store.has(String(key)) ? store.get(String(key)) : null),
  setItem: (key, value) => {
    store.set(String(key), String(value));
  },
  removeItem: (key) => {
    store.delete(String(key));
  },
  clear: () => store.clear(),
  key: (i) => [...store.keys()][i] ?? null,
  get length() {
    return store.size;
  },
};

globalThis.window = globalThis;
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
globalThis.localStorage = localStorage;

/** Reads and parses localStorage["gotrue.user"] (null when absent). */
export function storedUser() {
  const raw = localStorage.getItem('gotrue.user');
  return raw === null ? null : JSON.parse(raw);
}

// The recording fetch spy (shared with the other Node suites).
export { calls, callsSince, lastCall, mark } from '../../../support/fetch-recorder.mjs';

/** One line describing a recorded call, for assertion messages. */
export function describeCall(c) {
  if (!c) return '(no such request recorded)';
  const ct = c.resHeaders['content-type'];
  return `${c.method} ${c.path} -> ${c.status} content-type=${ct === undefined ? '(none)' : JSON.stringify(ct)} body=${truncate(c.resBody)}`;
}

/** Describes a rejection from gotrue-js / micro-api-client (status, JSON or text body). */
export function describeError(err) {
  if (!err || typeof err !== 'object') return String(err);
  const parts = [`${err.name || 'Error'}: ${err.message}`];
  if (err.status !== undefined) parts.push(`status=${err.status}`);
  if (err.json !== undefined) parts.push(`json=${JSON.stringify(err.json)}`);
  if (err.data !== undefined) parts.push(`text=${truncate(err.data)}`);
  return parts.join(' ');
}

function truncate(s, n = 600) {
  if (s === undefined || s === null) return String(s);
  const str = String(s);
  return str.length > n ? `${str.slice(0, n)}…(${str.length} chars)` : JSON.stringify(str);
}
