// A loopback stand-in for the two Ably REST endpoints chipflap's flows touch:
//   POST /keys/<keyName>/requestToken  — where ably-js sends the TokenRequest our authUrl returned.
//     The MAC is recomputed with ably-js's own `auth.createTokenRequest` (no network) and compared.
//   POST /keys/<keyName>/revokeTokens  — where chipflap sends a revocation when a user is banned.
// Every request (and every WebSocket upgrade attempt) is recorded, so tests can assert what reached
// "Ably" and that nothing else did.

import Ably from 'ably';
import { LoopbackHttpServer, sendJson, waitFor } from '../../../support/chipflap.mjs';

export const CANONICAL_REQUEST_TOKEN_FIELDS = ['keyName', 'ttl', 'capability', 'clientId', 'timestamp', 'nonce', 'mac'];

export class AblyStandIn extends LoopbackHttpServer {
  /** @param {{key: string}} opts the API key the stand-in "owns" (the one chipflap signs with). */
  constructor({ key }) {
    super((req, res) => this._handle(req, res));
    this.key = key;
    this.keyName = key.slice(0, key.indexOf(':'));
    /** All HTTP requests: {method, path, url, headers, body, at}. */
    this.requests = [];
    /** WebSocket upgrade attempts (a Realtime client got past auth): {url, headers}. */
    this.upgrades = [];
    /** One entry per requestToken call: {body, expected, macMatches, problems, reply}. */
    this.tokenRequests = [];
    /** Per-call reply for revokeTokens: 'array201' (docs) or 'batch200' (X-Ably-Version ≥ 3 shape). */
    this.revokeReplyShape = 'array201';
    // Never used for network: createTokenRequest with explicit timestamp+nonce is local (spec/ably.md §2).
    this.signer = new Ably.Rest({
      key,
      restHost: '127.0.0.1',
      realtimeHost: '127.0.0.1',
      port: 1,
      tls: false,
      fallbackHosts: [],
      logLevel: 0,
    });
    this.server.on('upgrade', (req, socket) => {
      this.upgrades.push({ url: req.url, headers: req.headers });
      socket.destroy();
    });
  }

  /** Requests whose path is /keys/<keyName>/revokeTokens (any method). */
  revocations() {
    return this.requests.filter((r) => /\/revokeTokens$/.test(r.path));
  }

  /** Requests that are neither requestToken nor revokeTokens. */
  unexpected() {
    return this.requests.filter((r) => !/\/keys\/[^/]+\/(requestToken|revokeTokens)$/.test(r.path));
  }

  /** Waits until `pred()` is true or the timeout passes; returns the last value of pred(). */
  waitFor(pred, timeoutMs = 5000) {
    return waitFor(pred, { timeoutMs });
  }

  _handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const path = req.url.split('?')[0];
      const rec = { method: req.method, path, url: req.url, headers: req.headers, body: raw.toString('utf8'), at: Date.now() };
      this.requests.push(rec);
      try {
        const m = path.match(/^\/keys\/([^/]+)\/(requestToken|revokeTokens)$/);
        if (m && req.method === 'POST' && m[2] === 'requestToken') return await this._requestToken(decodeURIComponent(m[1]), rec, res);
        if (m && req.method === 'POST' && m[2] === 'revokeTokens') return this._revokeTokens(rec, res);
        return sendJson(res, 404, { error: { code: 40400, statusCode: 404, message: `stand-in: no route ${req.method} ${path}` } });
      } catch (err) {
        return sendJson(res, 500, { error: { code: 50000, statusCode: 500, message: `stand-in error: ${err.message}` } });
      }
    });
  }

  async _requestToken(keyNameInPath, rec, res) {
    const entry = { body: null, expected: null, macMatches: false, problems: [] };
    this.tokenRequests.push(entry);
    let body;
    try {
      body = JSON.parse(rec.body);
    } catch {
      entry.problems.push(`body is not JSON: ${rec.body.slice(0, 200)}`);
      return sendJson(res, 400, { error: { code: 40000, statusCode: 400, message: 'stand-in: body is not JSON' } });
    }
    entry.body = body;
    if (keyNameInPath !== this.keyName) entry.problems.push(`path keyName ${keyNameInPath} != ${this.keyName}`);
    if (body.keyName !== this.keyName) entry.problems.push(`keyName ${JSON.stringify(body.keyName)} != ${this.keyName}`);
    // Recompute with ably-js itself: pass exactly the received optional fields (absent stays absent).
    const params = {};
    for (const f of ['ttl', 'capability', 'clientId', 'timestamp', 'nonce']) if (f in body) params[f] = body[f];
    const expected = await this.signer.auth.createTokenRequest(params, { key: this.key });
    entry.expected = expected;
    entry.macMatches = typeof body.mac === 'string' && body.mac === expected.mac;
    if (!entry.macMatches) entry.problems.push(`mac ${JSON.stringify(body.mac)} != ably-js ${expected.mac}`);
    if ('capability' in body && body.capability !== expected.capability) {
      entry.problems.push(`capability not canonical: ${JSON.stringify(body.capability)} vs ably-js c14n ${JSON.stringify(expected.capability)}`);
    }
    if (typeof body.timestamp !== 'number' || Math.abs(body.timestamp - Date.now()) > 120_000) {
      entry.problems.push(`timestamp ${JSON.stringify(body.timestamp)} not a ms number within 2 min of now (${Date.now()})`);
    }
    if (typeof body.nonce !== 'string' || body.nonce.length < 16) entry.problems.push(`nonce ${JSON.stringify(body.nonce)} shorter than 16`);
    if (entry.problems.length) {
      // What Ably answers for a bad MAC (40101), so ably-js rejects and the test sees it.
      return sendJson(res, 401, {
        error: { code: 40101, statusCode: 401, message: `stand-in refused TokenRequest: ${entry.problems.join('; ')}` },
      }, { 'x-ably-errorcode': '40101' });
    }
    const issued = Date.now();
    const ttl = typeof body.ttl === 'number' ? body.ttl : 3_600_000;
    const details = {
      token: `standin.${body.nonce}`,
      keyName: body.keyName,
      issued,
      expires: issued + ttl,
      capability: body.capability ?? '{"*":["*"]}',
      ...(body.clientId !== undefined ? { clientId: body.clientId } : {}),
    };
    entry.reply = details;
    return sendJson(res, 201, details);
  }

  _revokeTokens(rec, res) {
    let body = {};
    try {
      body = JSON.parse(rec.body);
    } catch {
      /* asserted by the test */
    }
    const now = Date.now();
    const targets = Array.isArray(body.targets) ? body.targets : [];
    const results = targets.map((target) => ({ target, issuedBefore: body.issuedBefore ?? now, appliesAt: now }));
    if (this.revokeReplyShape === 'batch200') {
      return sendJson(res, 200, { successCount: results.length, failureCount: 0, results });
    }
    return sendJson(res, 201, results);
  }
}
