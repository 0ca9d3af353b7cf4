// ably-js helpers: client options that never leave 127.0.0.1, a Realtime state probe that always
// closes its client, and independent (node:crypto) checks of what the authUrl returns.

import { createHmac, timingSafeEqual } from 'node:crypto';
import Ably from 'ably';
import { ABLY_KEY_NAME, ABLY_KEY_SECRET, decodeJwt } from './harness.mjs';

export { Ably };

/** Capability every user gets when ABLY_CAPABILITY is unset (DESIGN.md §2), canonical form. */
export const DEFAULT_CAPABILITY = '{"*":["subscribe"]}';
/** ABLY_TTLSECONDS default (DESIGN.md §2); also the 1 h ceiling for revocable keys (spec/ably.md §1). */
export const MAX_TTL_S = 3600;

/** Options that keep ably-js on loopback: REST/Realtime host 127.0.0.1:<port>, no TLS, no fallbacks. */
export function loopbackOptions(port, extra = {}) {
  return {
    restHost: '127.0.0.1',
    realtimeHost: '127.0.0.1',
    port,
    tls: false,
    fallbackHosts: [],
    logLevel: 0,
    // A retry must not happen inside a test's window; every client is closed right after its check.
    disconnectedRetryTimeout: 60_000,
    suspendedRetryTimeout: 60_000,
    ...extra,
  };
}

/** Plain data of an ably-js ErrorInfo (or anything thrown), for assertions and messages. */
export function errData(err) {
  if (!err) return err;
  const out = { code: err.code, statusCode: err.statusCode, message: err.message };
  if (err.cause) out.cause = errData(err.cause);
  return out;
}

/** Runs `promise` with a deadline; rejects with `what` timed out. */
export function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

/** `rest.auth.requestToken()` → {ok: true, details} | {ok: false, error: errData}. */
export async function requestTokenOutcome(rest, ms = 15_000) {
  try {
    const details = await withTimeout(rest.auth.requestToken(), ms, 'auth.requestToken()');
    return { ok: true, details };
  } catch (err) {
    if (err instanceof Error && /did not settle/.test(err.message)) throw err;
    return { ok: false, error: errData(err) };
  }
}

/**
 * Creates `new Ably.Realtime(options)` (autoConnect), waits for the first state in `until`,
 * then closes the client and waits (bounded) for it to settle. Returns
 * {state, reason, history: [{previous, current, reason}], closeState}.
 */
export async function realtimeOutcome(options, { until = ['connected', 'disconnected', 'suspended', 'failed'], timeoutMs = 15_000 } = {}) {
  const client = new Ably.Realtime({ autoConnect: true, ...options });
  const history = [];
  let result;
  try {
    result = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ state: `timeout(${client.connection.state})`, reason: errData(client.connection.errorReason) }), timeoutMs);
      const check = (change) => {
        if (change) history.push({ previous: change.previous, current: change.current, reason: errData(change.reason) });
        const state = client.connection.state;
        if (until.includes(state)) {
          clearTimeout(timer);
          client.connection.off(check);
          resolve({ state, reason: errData(change?.reason ?? client.connection.errorReason) });
        }
      };
      client.connection.on(check);
      check(null);
    });
  } finally {
    client.close();
    const settled = await new Promise((resolve) => {
      const t = setTimeout(() => resolve(client.connection.state), 5000);
      const done = () => {
        if (['closed', 'failed'].includes(client.connection.state)) {
          clearTimeout(t);
          client.connection.off(done);
          resolve(client.connection.state);
        }
      };
      client.connection.on(done);
      done();
    });
    if (result) result.closeState = settled;
  }
  return { ...result, history };
}

/** Standard base64 HMAC-SHA256 of the TokenRequest signText (spec/ably.md §2), independent of ably-js. */
export function tokenRequestMac(tr, secret = ABLY_KEY_SECRET) {
  const f = (v) => (v === undefined || v === null ? '' : String(v));
  const signText = `${f(tr.keyName)}\n${f(tr.ttl)}\n${f(tr.capability)}\n${f(tr.clientId)}\n${f(tr.timestamp)}\n${f(tr.nonce)}\n`;
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(signText, 'utf8').digest('base64');
}

/**
 * Checks an Ably JWT against spec/ably.md §1/§6A and DESIGN.md §6. Returns a list of problems
 * (empty = fine) and the decoded parts, so one failing assertion shows everything that is wrong.
 */
export function checkAblyJwt(token, { userId, capability = DEFAULT_CAPABILITY, maxTtlS = MAX_TTL_S } = {}) {
  const problems = [];
  let decoded;
  try {
    decoded = decodeJwt(token);
  } catch (err) {
    return { problems: [`cannot decode: ${err.message}`] };
  }
  const { parts, header, payload } = decoded;
  for (const [i, p] of parts.entries()) {
    if (!/^[A-Za-z0-9_-]+$/.test(p)) problems.push(`part ${i} is not unpadded base64url`);
  }
  const wantHeader = { typ: 'JWT', alg: 'HS256', kid: ABLY_KEY_NAME };
  const headerKeys = Object.keys(header).sort();
  if (JSON.stringify(headerKeys) !== JSON.stringify(['alg', 'kid', 'typ']) || Object.entries(wantHeader).some(([k, v]) => header[k] !== v)) {
    problems.push(`header ${JSON.stringify(header)} != ${JSON.stringify(wantHeader)}`);
  }
  const want = createHmac('sha256', Buffer.from(ABLY_KEY_SECRET, 'utf8')).update(`${parts[0]}.${parts[1]}`, 'ascii').digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) problems.push('signature does not verify with HMAC-SHA256(UTF-8 key secret)');

  const nowS = Date.now() / 1000;
  const { iat, exp } = payload;
  if (!Number.isInteger(iat) || iat > 1e11) problems.push(`iat ${JSON.stringify(iat)} is not integer seconds`);
  if (!Number.isInteger(exp) || exp > 1e11) problems.push(`exp ${JSON.stringify(exp)} is not integer seconds`);
  if (Number.isInteger(iat) && iat > Math.ceil(nowS)) problems.push(`iat ${iat} is in the future (now ${nowS.toFixed(3)})`);
  if (Number.isInteger(iat) && iat < nowS - 300) problems.push(`iat ${iat} is more than 5 min old (now ${nowS.toFixed(3)})`);
  if (Number.isInteger(exp) && exp <= nowS) problems.push(`exp ${exp} is not in the future`);
  if (Number.isInteger(iat) && Number.isInteger(exp) && !(exp - iat > 0 && exp - iat <= maxTtlS)) {
    problems.push(`exp - iat = ${exp - iat}, want 0 < ttl <= ${maxTtlS}`);
  }
  if (typeof payload['x-ably-capability'] !== 'string') {
    problems.push(`x-ably-capability must be a JSON string, got ${typeof payload['x-ably-capability']}: ${JSON.stringify(payload['x-ably-capability'])}`);
  } else if (payload['x-ably-capability'] !== capability) {
    problems.push(`x-ably-capability ${JSON.stringify(payload['x-ably-capability'])} != ${JSON.stringify(capability)}`);
  }
  if (payload['x-ably-clientId'] !== userId) problems.push(`x-ably-clientId ${JSON.stringify(payload['x-ably-clientId'])} != user id ${userId}`);
  const ablyClaims = Object.keys(payload).filter((k) => k.startsWith('x-ably-')).sort();
  if (JSON.stringify(ablyClaims) !== JSON.stringify(['x-ably-capability', 'x-ably-clientId'])) {
    problems.push(`x-ably-* claims ${JSON.stringify(ablyClaims)} != ["x-ably-capability","x-ably-clientId"]`);
  }
  if ('nbf' in payload) problems.push('nbf present (spec/ably.md §1: omit nbf)');
  if (String(token).length >= 4096) problems.push(`token is ${String(token).length} chars (keep < 4 KiB)`);
  return { problems, header, payload };
}
