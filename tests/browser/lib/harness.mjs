// This suite's servers: the shared harness (tests/support/chipflap.mjs: start/stop the compiled
// binary in a fresh temp dir, CLI, outbox, plain-HTTP GoTrue calls with the operator bearer) with
// the suite's secrets, the Ably key and a site host name, plus a loopback stand-in for Ably's
// revokeTokens endpoint.

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChipflapServer, LoopbackHttpServer, rawRequest, sendJson, startServer as startChipflap } from '../../support/chipflap.mjs';

export {
  ABLY_ENDPOINT_PATH,
  describeResponse as describe,
  jwtPayload,
  rawRequest,
  repoRoot,
  waitFor,
} from '../../support/chipflap.mjs';

/** This suite's folder (tests/browser). */
export const suiteRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const ABLY_KEY = 'appId1.keyId1:s3cr3tKeyValue_ForTests-0123';
export const ABLY_KEY_NAME = ABLY_KEY.slice(0, ABLY_KEY.indexOf(':'));
export const JWT_SECRET = 'console-browser-suite-jwt-secret-0123456789';
export const OPERATOR_TOKEN = 'console-browser-suite-operator-token-0123456789';

/**
 * Loopback stand-in for Ably's REST `POST /keys/<keyName>/revokeTokens` (what chipflap calls when a
 * user is banned). Answers 201 with one result per target, records every request.
 */
export class AblyRevocationStandIn extends LoopbackHttpServer {
  constructor() {
    super((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const path = req.url.split('?')[0];
        this.requests.push({ method: req.method, path, headers: req.headers, body, json, at: Date.now() });
        if (req.method === 'POST' && path === `/keys/${ABLY_KEY_NAME}/revokeTokens`) {
          const now = Date.now();
          const targets = Array.isArray(json?.targets) ? json.targets : [];
          return sendJson(res, 201, targets.map((target) => ({ target, issuedBefore: now, appliesAt: now })));
        }
        return sendJson(res, 404, { error: { code: 40400, statusCode: 404, message: `stand-in: no route ${req.method} ${path}` } });
      });
    });
    /** {method, path, headers, body, json, at} */
    this.requests = [];
  }

  /** revokeTokens requests naming `clientId:<userId>` as a target. */
  revocationsFor(userId) {
    return this.requests.filter((r) => /\/revokeTokens$/.test(r.path) && r.json?.targets?.includes(`clientId:${userId}`));
  }
}

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory; revocations go to
 * `ablyRestUrl` (CHIPFLAP_ABLY_REST_URL).
 *
 * `siteHost` is the host name of `GOTRUE_SITE_URL` (mail links use it), default `127.0.0.1`. A made-up
 * name such as `site.test` needs Chromium's `--host-resolver-rules=MAP site.test 127.0.0.1` (see
 * lib/browser.mjs); Node always talks to the server over `baseUrl` (127.0.0.1). With a `siteHost`,
 * `CHIPFLAP_CORS_ORIGINS` is the site's origin.
 */
export function startServer({ ablyRestUrl, siteHost, extraEnv = {}, startTimeoutMs } = {}) {
  return startChipflap({
    jwtSecret: JWT_SECRET,
    operatorToken: OPERATOR_TOKEN,
    siteHost,
    tmpPrefix: 'chipflap-browser-',
    env: { ABLY_APIKEY: ABLY_KEY, CHIPFLAP_ABLY_REST_URL: ablyRestUrl, ...extraEnv },
    startTimeoutMs,
    serverClass: Server,
  });
}

export class Server extends ChipflapServer {
  /** Only mails with a real `#<kind>_token=` link count in this suite (the browser follows them). */
  waitMail(opts) {
    return super.waitMail({ requireLink: true, ...opts });
  }

  /** GET on the Ably token endpoint with a bearer access token; returns the raw response. */
  ablyToken(accessToken) {
    return rawRequest(this.ablyUrl, { headers: { authorization: `Bearer ${accessToken}` } });
  }
}
