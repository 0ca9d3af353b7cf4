// Recording fetch spy for the Node suites (Node's fetch keeps no request log). Importing this
// module replaces globalThis.fetch once per process, so import it before any client library.
// Every call is recorded as
// { method, url, path, search, reqHeaders (lower-case keys), reqBody, status, resHeaders, resBody }.
// The response handed back to the caller is untouched (the body is read from a clone).

const realFetch = globalThis.fetch;
// Unrecorded fetch for a suite's own raw requests (chipflap.mjs rawRequest uses it).
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
  // Headers.forEach yields each Set-Cookie on its own: join repeats as Headers.get does.
  response.headers.forEach((v, k) => {
    entry.resHeaders[k] = k in entry.resHeaders ? `${entry.resHeaders[k]}, ${v}` : v;
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

/** Calls recorded since `from` (a value returned by `mark()`), optionally filtered by method and
 * path (a suffix of the URL path, or a RegExp). */
export function callsSince(from, { method, path } = {}) {
  return calls
    .slice(from)
    .filter(
      (c) =>
        (!method || c.method === method) &&
        (!path || (path instanceof RegExp ? path.test(c.path) : c.path.endsWith(path))),
    );
}

/** The last recorded call matching method/path (path matched as a suffix of the URL path). */
export function lastCall({ method, path } = {}) {
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i];
    if ((!method || c.method === method) && (!path || c.path.endsWith(path))) return c;
  }
  return undefined;
}
