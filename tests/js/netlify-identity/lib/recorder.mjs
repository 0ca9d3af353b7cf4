// Recording fetch spy, for both the browser and the server emulation: the shared one
// (tests/support/fetch-recorder.mjs), which records every call made through globalThis.fetch,
// by @netlify/identity directly or by gotrue-js underneath it. Import it before the first
// request. This module adds the suite's own message formatting.

export { calls, callsSince, mark } from '../../../support/fetch-recorder.mjs';
import { calls } from '../../../support/fetch-recorder.mjs';

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
