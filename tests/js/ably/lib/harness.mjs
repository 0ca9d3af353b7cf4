// This suite's servers: the shared harness (tests/support/chipflap.mjs: start/stop the compiled
// binary, plain-HTTP GoTrue calls with the operator bearer) with the suite's secrets, the Ably key
// and where revocations go, plus the Ably-specific calls and the JWT helpers only this suite needs.

import { createHmac } from 'node:crypto';
import { ChipflapServer, decodeJwt, rawRequest, startServer as startChipflap } from '../../../support/chipflap.mjs';

export { ABLY_ENDPOINT_PATH, decodeJwt, describeResponse as describe, rawRequest, repoRoot } from '../../../support/chipflap.mjs';

/** The Ably key every server of this suite gets (the key of spec/ably.md's test vectors). */
export const ABLY_KEY = 'appId1.keyId1:s3cr3tKeyValue_ForTests-0123';
export const ABLY_KEY_NAME = ABLY_KEY.slice(0, ABLY_KEY.indexOf(':'));
export const ABLY_KEY_SECRET = ABLY_KEY.slice(ABLY_KEY.indexOf(':') + 1);
export const JWT_SECRET = 'ably-js-compat-suite-jwt-secret-0123456789';
export const OPERATOR_TOKEN = 'ably-js-compat-suite-operator-token-0123456789';

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory.
 * `ablyRestUrl`: where revocations go (CHIPFLAP_ABLY_REST_URL); `ablyKey`: ABLY_APIKEY (null = unset).
 */
export function startServer({ ablyKey = ABLY_KEY, ablyRestUrl, extraEnv = {}, startTimeoutMs } = {}) {
  return startChipflap({
    jwtSecret: JWT_SECRET,
    operatorToken: OPERATOR_TOKEN,
    tmpPrefix: 'chipflap-ably-js-',
    env: { ABLY_APIKEY: ablyKey ?? undefined, CHIPFLAP_ABLY_REST_URL: ablyRestUrl, ...extraEnv },
    startTimeoutMs,
    serverClass: Server,
  });
}

export class Server extends ChipflapServer {
  /** Absolute authUrl for ably-js (Node cannot use a relative one). */
  get authUrl() {
    return this.ablyUrl;
  }

  /** Bans with the seed's convention: app_metadata.roles = ["banned"] (DESIGN.md §5). */
  ban(id) {
    return this.adminUpdate(id, { app_metadata: { roles: ['banned'] } });
  }

  /** Raw request to the Ably token endpoint (query string `query`, headers, optional form body). */
  ablyEndpoint({ method = 'GET', query = {}, headers = {}, form } = {}) {
    const qs = new URLSearchParams(query).toString();
    const url = `${this.authUrl}${qs ? `?${qs}` : ''}`;
    const init = { method, headers: { ...headers } };
    if (form) {
      init.headers['content-type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(form).toString();
    }
    return rawRequest(url, init);
  }
}

// ---- JWT helpers ----------------------------------------------------------------------------

export function b64urlJson(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
}

/** HS256 JWS over the given header and payload (our own signer, for forging GoTrue access tokens). */
export function signHs256(header, payload, secret) {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  const sig = createHmac('sha256', Buffer.from(secret, 'utf8')).update(input, 'ascii').digest('base64url');
  return `${input}.${sig}`;
}

/**
 * A GoTrue access token signed with the suite's GOTRUE_JWT_SECRET, built from a real one
 * (`template`) with some claims replaced. Used for users that cannot log in (unconfirmed, unknown)
 * and for an expired token.
 */
export function forgeAccessToken(template, overrides) {
  const { header, payload } = decodeJwt(template);
  return signHs256(header, { ...payload, ...overrides }, JWT_SECRET);
}
