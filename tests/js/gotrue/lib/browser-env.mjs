// Browser stand-ins that gotrue-js needs under Node 20 (spec/clients.md §4a).
// Import this module BEFORE importing any gotrue-js build.
//
// - `window`: gotrue-js only touches localStorage when `typeof window !== 'undefined'`,
//   and 0.9.x decodes the JWT with `window.atob` (without it `expires_at` is NaN and it never refreshes).
// - `addEventListener`: 1.0.1 registers a `storage` listener on window.
// - `localStorage`: Map-backed.
// - `fetch`: wrapped by a recording spy (Node's fetch has no cookie jar and no request log).

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

// ---------------------------------------------------------------------------
// Recording fetch spy. Every call made through globalThis.fetch is recorded as
// { method, url, path, reqHeaders (lower-case keys), reqBody, status, resHeaders, resBody }.
// The response handed back to the client is untouched (we read a clone).

const realFetch = globalThis.fetch;
// Unrecorded fetch for the suite's own raw requests (harness.rawRequest).
globalThis.__chipflapRealFetch = realFetch;
export const calls = [];

globalThis.fetch = async function recordingFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input.url;
  const method = (init.method || (typeof input === 'object' && input.method) || 'GET').toUpperCase();
  const reqHeaders = {};
  new Headers(init.headers || {}).forEach((v, k) => {
    reqHeaders[k] = v;
  });
  const entry = {
    method,
    url,
    path: new URL(url).pathname,
    reqHeaders,
    reqBody: typeof init.body === 'string' ? init.body : init.body == null ? null : '[non-string body]',
    status: undefined,
    resHeaders: {},
    resBody: undefined,
    error: undefined,
  };
  calls.push(entry);
  let response;
  try {
    response = await realFetch(input, init);
  } catch (err) {
    entry.error = err;
    throw err;
  }
  entry.status = response.status;
  response.headers.forEach((v, k) => {
    entry.resHeaders[k] = v;
  });
  try {
    entry.resBody = await response.clone().text();
  } catch (err) {
    entry.resBody = `[unreadable body: ${err}]`;
  }
  return response;
};

/** Marks the current end of the call log; pass it to `callsSince`. */
export function mark() {
  return calls.length;
}

/** Calls recorded since `from` (a value returned by `mark()`), optionally filtered. */
export function callsSince(from, { method, path } = {}) {
  return calls
    .slice(from)
    .filter(
      (c) =>
        (!method || c.method === method) &&
        (!path || (path instanceof RegExp ? path.test(c.path) : c.path.endsWith(path))),
    );
}

/** The last recorded call matching method/path (path matched as suffix of the URL path). */
export function lastCall({ method, path } = {}) {
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i];
    if ((!method || c.method === method) && (!path || c.path.endsWith(path))) return c;
  }
  return undefined;
}

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
