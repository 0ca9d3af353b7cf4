// Starts the compiled chipflap binary the way a user does (`chipflap serve` + environment) on
// 127.0.0.1 in a fresh temp dir, runs its CLI, talks to its GoTrue API over plain HTTP, and runs
// a loopback stand-in for Ably's revokeTokens endpoint. Same approach as tests/js/*/lib/harness.mjs
// (kept separate so the suites evolve independently).

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (tests/browser/lib -> ../../..). */
export const repoRoot = resolve(here, '..', '..', '..');
/** This suite's folder (tests/browser). */
export const suiteRoot = resolve(here, '..');

export const ABLY_KEY = 'appId1.keyId1:s3cr3tKeyValue_ForTests-0123';
export const ABLY_KEY_NAME = ABLY_KEY.slice(0, ABLY_KEY.indexOf(':'));
export const JWT_SECRET = 'console-browser-suite-jwt-secret-0123456789';
export const OPERATOR_TOKEN = 'console-browser-suite-operator-token-0123456789';
export const ABLY_ENDPOINT_PATH = '/.netlify/functions/ably-jwt';

/** Path of the binary under test: $CHIPFLAP_BIN, else <repo>/target/debug/chipflap. */
export function binaryPath() {
  return process.env.CHIPFLAP_BIN ? resolve(process.env.CHIPFLAP_BIN) : join(repoRoot, 'target', 'debug', 'chipflap');
}

/** Makes sure the binary exists; builds it with `cargo build --bin chipflap` when missing and CHIPFLAP_BIN is unset. */
export function ensureBinary() {
  const bin = binaryPath();
  if (existsSync(bin)) return bin;
  if (process.env.CHIPFLAP_BIN) throw new Error(`CHIPFLAP_BIN=${process.env.CHIPFLAP_BIN} does not exist`);
  process.stderr.write(`# ${bin} missing: running cargo build --bin chipflap in ${repoRoot}\n`);
  const r = spawnSync('cargo', ['build', '--bin', 'chipflap'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new Error(`cargo build failed to start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`cargo build --bin chipflap exited with ${r.status}`);
  if (!existsSync(bin)) throw new Error(`cargo build succeeded but ${bin} is missing`);
  return bin;
}

/** A free TCP port on 127.0.0.1 (asks the OS, then releases it). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/** The caller's environment minus chipflap/GoTrue/Ably settings, plus ours. */
function childEnv(overrides) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(GOTRUE_|CHIPFLAP_|ABLY_)/.test(k) || k === 'DATABASE_URL' || k === 'PORT' || k === 'RUST_LOG') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Loopback stand-in for Ably's REST `POST /keys/<keyName>/revokeTokens` (what chipflap calls when a
 * user is banned). Answers 201 with one result per target, records every request.
 */
export class AblyRevocationStandIn {
  constructor() {
    /** {method, path, headers, body, json, at} */
    this.requests = [];
    this.server = createHttpServer((req, res) => {
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
          return send(res, 201, targets.map((target) => ({ target, issuedBefore: now, appliesAt: now })));
        }
        return send(res, 404, { error: { code: 40400, statusCode: 404, message: `stand-in: no route ${req.method} ${path}` } });
      });
    });
    this.sockets = new Set();
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen() {
    await new Promise((res, rej) => {
      this.server.once('error', rej);
      this.server.listen(0, '127.0.0.1', res);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((res) => this.server.close(() => res()));
  }

  /** revokeTokens requests naming `clientId:<userId>` as a target. */
  revocationsFor(userId) {
    return this.requests.filter((r) => /\/revokeTokens$/.test(r.path) && r.json?.targets?.includes(`clientId:${userId}`));
  }
}

function send(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory.
 *
 * `siteHost` is the host name of `GOTRUE_SITE_URL` (mail links use it), default `127.0.0.1`. A made-up
 * name such as `site.test` needs Chromium's `--host-resolver-rules=MAP site.test 127.0.0.1` (see
 * lib/browser.mjs); Node always talks to the server over `baseUrl` (127.0.0.1). With a `siteHost`,
 * `CHIPFLAP_CORS_ORIGINS` is the site's origin.
 */
export async function startServer({ ablyRestUrl, siteHost = '127.0.0.1', extraEnv = {}, startTimeoutMs = 30_000 } = {}) {
  const bin = ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), 'chipflap-browser-'));
  const port = await freePort();
  const siteUrl = `http://${siteHost}:${port}`;
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = childEnv({
    DATABASE_URL: `sqlite://${join(dir, 'db.sqlite')}`,
    GOTRUE_API_HOST: '127.0.0.1',
    PORT: String(port),
    GOTRUE_SITE_URL: siteUrl,
    GOTRUE_JWT_SECRET: JWT_SECRET,
    GOTRUE_OPERATOR_TOKEN: OPERATOR_TOKEN,
    CHIPFLAP_MAIL_DIR: join(dir, 'outbox'),
    CHIPFLAP_ARGON2_MEMORY_KIB: '1024',
    CHIPFLAP_ARGON2_ITERATIONS: '1',
    ABLY_APIKEY: ABLY_KEY,
    CHIPFLAP_ABLY_REST_URL: ablyRestUrl,
    ...(siteHost === '127.0.0.1' ? {} : { CHIPFLAP_CORS_ORIGINS: siteUrl }),
    RUST_LOG: 'warn',
    ...extraEnv,
  });
  const server = new Server({ bin, dir, port, siteUrl, baseUrl, env });
  await server._start(startTimeoutMs);
  return server;
}

export class Server {
  constructor({ bin, dir, port, siteUrl, baseUrl = siteUrl, env }) {
    Object.assign(this, { bin, dir, port, siteUrl, baseUrl, env });
    // Node has no host-resolver rules: it always uses the loopback address.
    this.apiUrl = `${baseUrl}/.netlify/identity`;
    this.ablyUrl = `${baseUrl}${ABLY_ENDPOINT_PATH}`;
    this.outbox = join(dir, 'outbox');
    this.logPath = join(dir, 'server.log');
    this.log = '';
    this.proc = null;
    this.exited = null;
  }

  async _start(timeoutMs) {
    const logFile = createWriteStream(this.logPath);
    // cwd = the temp dir, so a stray .env in the caller's cwd is never read.
    this.proc = spawn(this.bin, ['serve'], { cwd: this.dir, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
      logFile.write(chunk);
    };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    let exitInfo = null;
    this.exited = new Promise((res) => {
      this.proc.on('exit', (code, signal) => {
        logFile.end();
        res({ code, signal });
      });
      this.proc.on('error', (err) => {
        this.log += `\n[spawn error] ${err.message}\n`;
        res({ code: null, signal: null, error: err });
      });
    }).then((info) => (exitInfo = info));

    const deadline = Date.now() + timeoutMs;
    let lastErr = '';
    while (Date.now() < deadline) {
      if (exitInfo) {
        throw new Error(
          `chipflap serve exited before becoming healthy (code=${exitInfo.code} signal=${exitInfo.signal})\n` +
            `--- server output ---\n${this.log.slice(-4000)}`,
        );
      }
      try {
        const r = await fetch(`${this.apiUrl}/health`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) return;
        lastErr = `status ${r.status}`;
      } catch (err) {
        lastErr = String(err.cause?.code || err.message);
      }
      await sleep(100);
    }
    await this.stop({ keep: true });
    throw new Error(
      `chipflap serve did not answer 200 on /health within ${timeoutMs} ms (last: ${lastErr})\n` +
        `--- server output ---\n${this.log.slice(-4000)}`,
    );
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes the temp dir unless kept. */
  async stop({ keep = !!process.env.CHIPFLAP_KEEP_TMP } = {}) {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = sleep(5000).then(() => 'timeout');
      if ((await Promise.race([this.exited, t])) === 'timeout') {
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    }
    if (keep) process.stderr.write(`# chipflap temp dir kept: ${this.dir} (log: ${this.logPath})\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(n = 3000) {
    return this.log.slice(-n);
  }

  /** Runs `chipflap <args>` with the server's environment, in its temp dir; throws on a non-zero exit. */
  cliOk(args) {
    const r = spawnSync(this.bin, args, { cwd: this.dir, env: this.env, encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    if (r.status !== 0) {
      throw new Error(`chipflap ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r;
  }

  // ---- GoTrue API helpers (plain HTTP) -------------------------------------------------------

  /** Confirmed user through the admin API (operator bearer). Returns the user JSON. */
  async createUser(email, password, { fullName, confirm = true } = {}) {
    const body = { email, password, confirm };
    if (fullName) body.user_metadata = { full_name: fullName };
    const r = await rawRequest(`${this.apiUrl}/admin/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if ((r.status !== 200 && r.status !== 201) || !r.json?.id) throw new Error(`admin create ${email}: ${describe(r)}`);
    return r.json;
  }

  /** Unconfirmed signup (POST /signup). Returns the user JSON. */
  async signup(email, password, { fullName } = {}) {
    const body = { email, password };
    if (fullName) body.data = { full_name: fullName };
    const r = await rawRequest(`${this.apiUrl}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`signup ${email}: ${describe(r)}`);
    return r.json;
  }

  /** GET /admin/users (operator bearer, first page of 100). Returns the users array. */
  async listUsers() {
    const r = await rawRequest(`${this.apiUrl}/admin/users?per_page=100`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    if (r.status !== 200 || !Array.isArray(r.json?.users)) throw new Error(`admin list: ${describe(r)}`);
    return r.json.users;
  }

  /** Admin PUT /admin/users/:id with a JSON body. */
  async adminUpdate(id, body) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`admin update ${id}: ${describe(r)}`);
    return r.json;
  }

  /** Password grant; returns the raw response. */
  passwordGrant(email, password) {
    return rawRequest(`${this.apiUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
    });
  }

  /** Password grant that must succeed; returns {access_token, refresh_token, …}. */
  async login(email, password) {
    const r = await this.passwordGrant(email, password);
    if (r.status !== 200 || !r.json?.access_token) throw new Error(`login ${email}: ${describe(r)}`);
    return r.json;
  }

  /** Refresh grant; returns the raw response. */
  refreshGrant(refreshToken) {
    return rawRequest(`${this.apiUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    });
  }

  /** GET on the Ably token endpoint with a bearer access token; returns the raw response. */
  ablyToken(accessToken) {
    return rawRequest(this.ablyUrl, { headers: { authorization: `Bearer ${accessToken}` } });
  }

  /** Admin GET /admin/users/:id (operator bearer). Returns the user JSON. */
  async adminGet(id) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    if (r.status !== 200) throw new Error(`admin get ${id}: ${describe(r)}`);
    return r.json;
  }

  /** POST /invite with the operator bearer. Returns the raw response. */
  invite(email, data) {
    const body = { email };
    if (data) body.data = data;
    return rawRequest(`${this.apiUrl}/invite`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  // ---- Outbox (CHIPFLAP_MAIL_DIR: one .eml file per message) ----------------------------------

  /** Names of the .eml files currently in the outbox (pass to waitMail as `since`). */
  mailMark() {
    return new Set(this._emlFiles());
  }

  _emlFiles() {
    if (!existsSync(this.outbox)) return [];
    return readdirSync(this.outbox).filter((f) => f.endsWith('.eml'));
  }

  /** All parsed mails in the outbox, newest first. */
  mails() {
    return this._emlFiles()
      .map((name) => {
        const path = join(this.outbox, name);
        return { name, path, mtimeMs: statSync(path).mtimeMs, ...parseMail(readFileSync(path, 'latin1')) };
      })
      .sort((a, b) => b.mtimeMs - a.mtimeMs || (a.name < b.name ? 1 : -1));
  }

  /**
   * Waits for the newest mail addressed to `to` whose decoded body holds a link with
   * `#<kind>_token=`, among files not in `since` (a Set from mailMark()). Returns
   * {token, link, mail}; throws (listing what did arrive) after `timeoutMs`.
   */
  async waitMail({ to, kind, since = new Set(), timeoutMs = 10_000 }) {
    const deadline = Date.now() + timeoutMs;
    const linkRe = new RegExp(`(https?://[^\\s"'<>]*?)#${kind}_token=([A-Za-z0-9_-]+)`);
    for (;;) {
      for (const m of this.mails()) {
        if (since.has(m.name) || !addressedTo(m.headers.to, to)) continue;
        const hit = m.bodies.join('\n').match(linkRe);
        if (hit) return { token: hit[2], link: `${hit[1]}#${kind}_token=${hit[2]}`, base: hit[1], mail: m };
      }
      if (Date.now() > deadline) {
        const seen = this.mails()
          .filter((m) => !since.has(m.name))
          .map((m) => `  ${m.name} To=${m.headers.to} Subject=${m.headers.subject}`)
          .join('\n');
        throw new Error(`no new mail to ${to} with a #${kind}_token= link within ${timeoutMs} ms; new mails in ${this.outbox}:\n${seen || '  (none)'}`);
      }
      await sleep(100);
    }
  }
}

function addressedTo(toHeader, address) {
  if (!toHeader) return false;
  const esc = address.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s<,:"])${esc}($|[\\s>,"])`).test(toHeader.toLowerCase());
}

// ---- Minimal MIME reading: headers (unfolded), multipart bodies, quoted-printable and base64 ---
// (the same reader as tests/js/gotrue/lib/harness.mjs)

export function parseMail(raw) {
  const { headers, body } = splitHeaders(raw);
  const bodies = [];
  collectBodies(headers, body, bodies);
  return { headers: simpleHeaders(headers), bodies, raw };
}

function splitHeaders(raw) {
  const idx = raw.search(/\r?\n\r?\n/);
  const head = idx === -1 ? raw : raw.slice(0, idx);
  const body = idx === -1 ? '' : raw.slice(idx).replace(/^\r?\n\r?\n/, '');
  const headers = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length) headers[headers.length - 1][1] += ` ${line.trim()}`;
    else {
      const c = line.indexOf(':');
      if (c > 0) headers.push([line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim()]);
    }
  }
  return { headers, body };
}

function simpleHeaders(list) {
  const out = {};
  for (const [k, v] of list) if (!(k in out)) out[k] = decodeEncodedWords(v);
  return out;
}

function mimeHeader(list, name) {
  const h = list.find(([k]) => k === name);
  return h ? h[1] : '';
}

function collectBodies(headers, body, out) {
  const ctype = mimeHeader(headers, 'content-type') || 'text/plain';
  const boundary = ctype.match(/boundary="?([^";]+)"?/i);
  if (/^multipart\//i.test(ctype) && boundary) {
    const parts = body.split(`--${boundary[1]}`).slice(1);
    for (const part of parts) {
      if (part.startsWith('--')) break;
      const p = splitHeaders(part.replace(/^\r?\n/, ''));
      collectBodies(p.headers, p.body, out);
    }
    return;
  }
  const cte = mimeHeader(headers, 'content-transfer-encoding').toLowerCase();
  let text;
  if (cte === 'quoted-printable') text = decodeQP(body);
  else if (cte === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else text = Buffer.from(body, 'latin1').toString('utf8');
  out.push(text);
}

export function decodeQP(s) {
  const bytes = Buffer.from(
    s.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  );
  return bytes.toString('utf8');
}

function decodeEncodedWords(v) {
  return v.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _cs, enc, data) =>
    enc.toLowerCase() === 'b' ? Buffer.from(data, 'base64').toString('utf8') : decodeQP(data.replace(/_/g, ' ')),
  );
}

/** fetch wrapper: {status, headers (lower-case names), text, json}. 10 s timeout. */
export async function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  const r = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  const h = {};
  r.headers.forEach((v, k) => {
    h[k] = v;
  });
  return { status: r.status, headers: h, text, json };
}

/** Multi-line description of a raw response, for assertion messages. */
export function describe(r) {
  const hs = Object.entries(r.headers)
    .map(([k, v]) => `    ${k}: ${v}`)
    .join('\n');
  return `status ${r.status}\n  headers:\n${hs}\n  body: ${r.text.length > 1500 ? `${r.text.slice(0, 1500)}…` : r.text}`;
}

/** Payload of a compact JWS (no verification). */
export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString('utf8'));
}

/** Polls `pred` (sync or async) until truthy or `timeoutMs` passes; returns its last value. */
export async function waitFor(pred, { timeoutMs = 5000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v || Date.now() > deadline) return v;
    await sleep(intervalMs);
  }
}
