// Recording fetch spy, for both the browser and the server emulation. Import it before the
// first request. Every call made through globalThis.fetch (by @netlify/identity directly, or by
// gotrue-js underneath it) is recorded as
// { method, url, path, search, reqHeaders (lower-case keys), reqBody, status, resHeaders, resBody }.
// The response handed back to the caller is untouched (we read a clone).
// Adapted from tests/js/gotrue/lib/browser-env.mjs.

const realFetch = globalThis.fetch;
// Unrecorded fetch for the suite's own raw requests (harness.rawRequest).
globalThis.__chipflapRealFetch = realFetch;
export const calls = [];

globalThis.fetch = async function recordingFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = (init.method || (typeof input === 'object' && input.method) || 'GET').toUpperCase();
  const reqHeaders = {};
  new Headers(init.headers || {}).forEach((v, k) => {
    reqHeaders[k] = v;
  });
  const u = new URL(url);
  const entry = {
    method,
    url,
    path: u.pathname,
    search: u.search,
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

/** Calls recorded since `from` (a value returned by `mark()`), optionally filtered by method / path suffix. */
export function callsSince(from, { method, path } = {}) {
  return calls
    .slice(from)
    .filter(
      (c) =>
        (!method || c.method === method) &&
        (!path || (path instanceof RegExp ? path.test(c.path) : c.path.endsWith(path))),
    );
}

/** One line describing a recorded call (status, headers, body), for assertion messages. */
export function describeCall(c) {
  if (!c) return '(no such request recorded)';
  const h = Object.entries(c.resHeaders)
    .filter(([k]) => !['date', 'vary', 'access-control-expose-headers', 'access-control-allow-credentials'].includes(k))
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ');
  return `${c.method} ${c.path}${c.search || ''} -> ${c.status} [${h}] body=${truncate(c.resBody)}`;
}

/** Describes every call since `from`, one per line. */
export function describeCalls(from) {
  return calls
    .slice(from)
    .map((c) => `  ${describeCall(c)}`)
    .join('\n');
}

/** Describes an AuthError (with its cause: gotrue-js JSONHTTPError / TextHTTPError) for messages. */
export function describeError(err) {
  if (!err || typeof err !== 'object') return String(err);
  const parts = [`${err.name || 'Error'}: ${err.message}`];
  if (err.status !== undefined) parts.push(`status=${err.status}`);
  const cause = err.cause;
  if (cause && typeof cause === 'object') {
    parts.push(`cause=${cause.name || 'Error'}: ${cause.message}`);
    if (cause.status !== undefined) parts.push(`cause.status=${cause.status}`);
    if (cause.json !== undefined) parts.push(`cause.json=${JSON.stringify(cause.json)}`);
    if (cause.data !== undefined) parts.push(`cause.data=${truncate(cause.data)}`);
  }
  return parts.join(' ');
}

export function truncate(s, n = 600) {
  if (s === undefined || s === null) return String(s);
  const str = String(s);
  return str.length > n ? `${JSON.stringify(str.slice(0, n))}…(${str.length} chars)` : JSON.stringify(str);
}
