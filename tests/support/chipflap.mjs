// Shared harness for the Node test suites (tests/js/*, tests/browser). Node built-ins only, so
// every suite imports it by relative path without installing anything.
//
// Owns what every suite does the same way with the compiled chipflap binary:
//   - finding it (and building it when missing): binaryPath(), ensureBinary()
//   - starting `chipflap serve` in a fresh temp dir on a free 127.0.0.1 port with a clean
//     environment, waiting for /.netlify/identity/health, stopping it (SIGTERM, then SIGKILL):
//     startServer() -> ChipflapServer
//   - its CLI (`chipflap users add …`, `chipflap token system`): ChipflapServer#cli/cliOk/addUser/systemToken
//   - its outbox (CHIPFLAP_MAIL_DIR, one .eml per mail) with a small MIME reader (multipart,
//     quoted-printable, base64, encoded words): mailMark/mails/waitMail, parseMail(), decodeQP()
//   - plain-HTTP GoTrue calls (signup, grants, operator-bearer admin API): ChipflapServer methods,
//     rawRequest(), describeResponse(), jwtPayload(), decodeJwt()
//   - small loopback plumbing for stand-ins: freePort(), LoopbackHttpServer, sendJson(), waitFor()
// Each suite keeps its own settings (secrets, temp-dir prefix, extra env vars), helpers only it
// needs and its stand-ins in its lib/harness.mjs, usually as a subclass of ChipflapServer.
//
// Fetch spies: a suite that replaces globalThis.fetch with a recorder stores the original in
// globalThis.__chipflapRealFetch; the harness's own requests (health checks, rawRequest) use it.

import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** Repository root (tests/support -> ../..). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Path of the GoTrue API under the site (DESIGN.md §1). */
export const IDENTITY_PATH = '/.netlify/identity';
/** Path of the Ably token endpoint (DESIGN.md §1). */
export const ABLY_ENDPOINT_PATH = '/.netlify/functions/ably-jwt';

/** The un-spied fetch (see the header). */
function realFetch() {
  return globalThis.__chipflapRealFetch || globalThis.fetch;
}

// ---- Binary -------------------------------------------------------------------------------------

/** Path of the binary under test: $CHIPFLAP_BIN, else <repo>/target/debug/chipflap. */
export function binaryPath() {
  return process.env.CHIPFLAP_BIN ? resolve(process.env.CHIPFLAP_BIN) : join(repoRoot, 'target', 'debug', 'chipflap');
}

/**
 * Makes sure the binary exists and returns its path. When CHIPFLAP_BIN is not set and
 * target/debug/chipflap is missing, runs `cargo build --bin chipflap` in the repository root with
 * `buildEnv` added to the environment (e.g. {SQLX_OFFLINE: 'true'}); cargo waits for its lock when
 * another build holds it.
 */
export function ensureBinary({ buildEnv = {} } = {}) {
  const bin = binaryPath();
  if (existsSync(bin)) return bin;
  if (process.env.CHIPFLAP_BIN) throw new Error(`CHIPFLAP_BIN=${process.env.CHIPFLAP_BIN} does not exist`);
  const shown = Object.entries(buildEnv).map(([k, v]) => `${k}=${v} `).join('');
  process.stderr.write(`# ${bin} missing: running ${shown}cargo build --bin chipflap in ${repoRoot}\n`);
  const r = spawnSync('cargo', ['build', '--bin', 'chipflap'], {
    cwd: repoRoot,
    env: { ...process.env, ...buildEnv },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error) throw new Error(`cargo build failed to start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`cargo build --bin chipflap exited with ${r.status}`);
  if (!existsSync(bin)) throw new Error(`cargo build succeeded but ${bin} is missing`);
  return bin;
}

// ---- Loopback plumbing --------------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (asks the OS, then releases it). Nothing listens on it afterwards. */
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

/**
 * Base for loopback stand-ins of outside HTTP services: `server` is a node:http server calling
 * `handler`; listen() picks a free port on 127.0.0.1 and sets `port` and `url`; close() also drops
 * open keep-alive connections, so it never hangs.
 */
export class LoopbackHttpServer {
  constructor(handler) {
    this.server = createHttpServer(handler);
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
}

/** Answers a node:http request with a JSON body. */
export function sendJson(res, status, obj, extraHeaders = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
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

// ---- Server -------------------------------------------------------------------------------------

/**
 * Environment for the server and its CLI: the caller's environment minus every chipflap, GoTrue
 * and Ably setting (GOTRUE_*, CHIPFLAP_*, ABLY_*, DATABASE_URL, PORT, RUST_LOG), plus `overrides`
 * (a value of undefined removes the variable).
 */
export function serverEnv(overrides = {}) {
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
 * Starts `chipflap serve` on a free 127.0.0.1 port with a fresh temp dir (SQLite file, outbox,
 * log) and cheap argon2, and waits until /.netlify/identity/health answers 200.
 *
 * Options:
 *   jwtSecret      GOTRUE_JWT_SECRET (required; 32+ bytes).
 *   operatorToken  GOTRUE_OPERATOR_TOKEN, the static admin bearer the admin helpers send (default: unset).
 *   siteHost       host name of GOTRUE_SITE_URL (mail links use it), default 127.0.0.1. Any other name
 *                  also sets CHIPFLAP_CORS_ORIGINS to the site's origin; a browser needs a host
 *                  resolver rule for it, Node always talks to the server over `baseUrl` (127.0.0.1).
 *   env            more variables, applied last (undefined removes one), e.g. {ABLY_APIKEY: …}.
 *   tmpPrefix      prefix of the temp dir's name under os.tmpdir().
 *   buildEnv       environment additions for the cargo build when the binary is missing.
 *   startTimeoutMs how long to wait for health (default 30 s).
 *   serverClass    ChipflapServer or a suite's subclass of it (gets ChipflapServer's constructor arguments).
 * On failure the process is stopped, the temp dir kept (its path is printed) and the error carries
 * the tail of the server's output.
 */
export async function startServer({
  jwtSecret,
  operatorToken,
  siteHost = '127.0.0.1',
  env = {},
  tmpPrefix = 'chipflap-',
  buildEnv,
  startTimeoutMs = 30_000,
  serverClass = ChipflapServer,
} = {}) {
  if (!jwtSecret) throw new Error('startServer: jwtSecret is required');
  const bin = ensureBinary({ buildEnv });
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const port = await freePort();
  const siteUrl = `http://${siteHost}:${port}`;
  const baseUrl = `http://127.0.0.1:${port}`;
  const outbox = join(dir, 'outbox');
  const childEnv = serverEnv({
    DATABASE_URL: `sqlite://${join(dir, 'db.sqlite')}`,
    GOTRUE_API_HOST: '127.0.0.1',
    PORT: String(port),
    GOTRUE_SITE_URL: siteUrl,
    GOTRUE_JWT_SECRET: jwtSecret,
    GOTRUE_OPERATOR_TOKEN: operatorToken ?? undefined,
    CHIPFLAP_MAIL_DIR: outbox,
    CHIPFLAP_ARGON2_MEMORY_KIB: '1024',
    CHIPFLAP_ARGON2_ITERATIONS: '1',
    CHIPFLAP_CORS_ORIGINS: siteHost === '127.0.0.1' ? undefined : siteUrl,
    RUST_LOG: 'warn',
    ...env,
  });
  const server = new serverClass({ bin, dir, port, siteUrl, baseUrl, outbox, env: childEnv, operatorToken });
  await server._start(startTimeoutMs);
  return server;
}

/** A running `chipflap serve` (made by startServer()). */
export class ChipflapServer {
  constructor({ bin, dir, port, siteUrl, baseUrl = siteUrl, outbox = join(dir, 'outbox'), env, operatorToken = null }) {
    Object.assign(this, { bin, dir, port, siteUrl, baseUrl, outbox, env, operatorToken });
    // Absolute URLs (Node's fetch cannot use relative ones) on the loopback address (Node has no
    // host-resolver rules, whatever the site's host name).
    /** GoTrue API root, to hand to clients. */
    this.apiUrl = `${baseUrl}${IDENTITY_PATH}`;
    /** The Ably token endpoint (authUrl). */
    this.ablyUrl = `${baseUrl}${ABLY_ENDPOINT_PATH}`;
    this.logPath = join(dir, 'server.log');
    /** stdout+stderr so far (the last 100-200 kB). */
    this.log = '';
    this.proc = null;
    /** Resolves with {code, signal[, error]} when the process is gone. */
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
    });
    this.exited.then((info) => {
      exitInfo = info;
    });

    const deadline = Date.now() + timeoutMs;
    let lastErr = '';
    let problem;
    for (;;) {
      if (exitInfo) {
        problem = `chipflap serve exited before becoming healthy (code=${exitInfo.code} signal=${exitInfo.signal})`;
        break;
      }
      if (Date.now() >= deadline) {
        problem = `chipflap serve did not answer 200 on /health within ${timeoutMs} ms (last: ${lastErr})`;
        break;
      }
      try {
        const r = await realFetch()(`${this.apiUrl}/health`, { signal: AbortSignal.timeout(2000) });
        const text = await r.text();
        if (r.status === 200) return;
        lastErr = `status ${r.status}: ${text.slice(0, 300)}`;
      } catch (err) {
        lastErr = String(err.cause?.code || err.message);
      }
      await sleep(100);
    }
    await this.stop({ keep: true });
    throw new Error(`${problem}\n--- server output ---\n${this.log.slice(-4000)}`);
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

  /** The last `n` characters of the server's stdout+stderr. */
  logTail(n = 3000) {
    return this.log.slice(-n);
  }

  // ---- CLI (same environment and temp dir as the server) ----------------------------------------

  /** Runs `chipflap <args>`, with `input` on its standard input. Returns {status, stdout, stderr}. */
  cli(args, { input = '' } = {}) {
    const r = spawnSync(this.bin, args, { cwd: this.dir, env: this.env, encoding: 'utf8', timeout: 60_000, input });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Like cli(), but throws with the output when the exit status is not 0. */
  cliOk(args, options = {}) {
    const r = this.cli(args, options);
    if (r.status !== 0) {
      throw new Error(`chipflap ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r;
  }

  /** `chipflap users add --email E --password-stdin [--admin] [--confirmed]` (confirmed by default). */
  addUser({ email, password, admin = false, confirmed = true }) {
    const args = ['users', 'add', '--email', email, '--password-stdin'];
    if (admin) args.push('--admin');
    if (confirmed) args.push('--confirmed');
    return this.cliOk(args, { input: `${password}\n` });
  }

  /** `chipflap token system`: a system JWT (sub "0"), what Netlify hands functions as the identity token. */
  systemToken() {
    return this.cliOk(['token', 'system']).stdout.trim().split(/\s+/).pop();
  }

  // ---- Outbox (CHIPFLAP_MAIL_DIR: one .eml file per message) ------------------------------------

  /** Names of the .eml files currently in the outbox (pass to waitMail as `since`). */
  mailMark() {
    return new Set(this._emlFiles());
  }

  _emlFiles() {
    if (!existsSync(this.outbox)) return [];
    return readdirSync(this.outbox).filter((f) => f.endsWith('.eml'));
  }

  /** All parsed mails in the outbox, newest first: {name, path, mtimeMs, headers, bodies, raw}. */
  mails() {
    return this._emlFiles()
      .map((name) => {
        const path = join(this.outbox, name);
        return { name, path, mtimeMs: statSync(path).mtimeMs, ...parseMail(readFileSync(path, 'latin1')) };
      })
      .sort((a, b) => b.mtimeMs - a.mtimeMs || (a.name < b.name ? 1 : -1));
  }

  /**
   * Waits for the newest mail addressed to `to` whose decoded body holds `#<kind>_token=`, among
   * files not in `since` (a Set from mailMark()). Returns {token, link, base, mail}: `link` is the
   * full URL of the first such link and `base` the part before `#`. A token that is not base64url,
   * or one without a URL in front, is returned with link = base = null (the caller's assertions
   * show what is wrong) unless `requireLink`, which keeps waiting for a proper link. Throws,
   * listing what did arrive, after `timeoutMs`.
   */
  async waitMail({ to, kind, since = new Set(), timeoutMs = 10_000, requireLink = false }) {
    const deadline = Date.now() + timeoutMs;
    const linkRe = new RegExp(`(https?://[^\\s"'<>]*?)#${kind}_token=([A-Za-z0-9_-]+)`);
    const tokenRe = new RegExp(`#${kind}_token=([^\\s"'<>&]+)`);
    for (;;) {
      for (const m of this.mails()) {
        if (since.has(m.name) || !addressedTo(m.headers.to, to)) continue;
        const text = m.bodies.join('\n');
        const link = text.match(linkRe);
        if (link) return { token: link[2], link: `${link[1]}#${kind}_token=${link[2]}`, base: link[1], mail: m };
        const loose = requireLink ? null : text.match(tokenRe);
        if (loose) return { token: loose[1], link: null, base: null, mail: m };
      }
      if (Date.now() > deadline) {
        const seen = this.mails()
          .filter((m) => !since.has(m.name))
          .map((m) => `  ${m.name} To=${m.headers.to} Subject=${m.headers.subject}`)
          .join('\n');
        const what = requireLink ? `a #${kind}_token= link` : `#${kind}_token=`;
        throw new Error(`no new mail to ${to} with ${what} within ${timeoutMs} ms; new mails in ${this.outbox}:\n${seen || '  (none)'}`);
      }
      await sleep(100);
    }
  }

  // ---- GoTrue API over plain HTTP (admin calls use the operator bearer) -------------------------

  _operator() {
    if (!this.operatorToken) throw new Error('this server has no GOTRUE_OPERATOR_TOKEN (startServer({operatorToken}))');
    return { authorization: `Bearer ${this.operatorToken}` };
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
    if (r.status !== 200) throw new Error(`signup ${email}: ${describeResponse(r)}`);
    return r.json;
  }

  /** Password grant; returns the raw response. */
  passwordGrant(email, password) {
    return this._tokenGrant({ grant_type: 'password', username: email, password });
  }

  /** Password grant that must succeed; returns {access_token, refresh_token, …}. */
  async login(email, password) {
    const r = await this.passwordGrant(email, password);
    if (r.status !== 200 || !r.json?.access_token) throw new Error(`login ${email}: ${describeResponse(r)}`);
    return r.json;
  }

  /** Refresh grant; returns the raw response. */
  refreshGrant(refreshToken) {
    return this._tokenGrant({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  _tokenGrant(form) {
    return rawRequest(`${this.apiUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** User through the admin API, confirmed unless {confirm: false}. Returns the user JSON. */
  async createUser(email, password, { fullName, confirm = true } = {}) {
    const body = { email, password, confirm };
    if (fullName) body.user_metadata = { full_name: fullName };
    const r = await rawRequest(`${this.apiUrl}/admin/users`, {
      method: 'POST',
      headers: { ...this._operator(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if ((r.status !== 200 && r.status !== 201) || !r.json?.id) throw new Error(`admin create ${email}: ${describeResponse(r)}`);
    return r.json;
  }

  /** GET /admin/users (first page of 100). Returns the users array. */
  async listUsers() {
    const r = await rawRequest(`${this.apiUrl}/admin/users?per_page=100`, { headers: this._operator() });
    if (r.status !== 200 || !Array.isArray(r.json?.users)) throw new Error(`admin list: ${describeResponse(r)}`);
    return r.json.users;
  }

  /** GET /admin/users/:id. Returns the user JSON. */
  async adminGet(id) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, { headers: this._operator() });
    if (r.status !== 200) throw new Error(`admin get ${id}: ${describeResponse(r)}`);
    return r.json;
  }

  /** PUT /admin/users/:id with a JSON body. Returns the user JSON. */
  async adminUpdate(id, body) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, {
      method: 'PUT',
      headers: { ...this._operator(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`admin update ${id}: ${describeResponse(r)}`);
    return r.json;
  }

  /** DELETE /admin/users/:id. */
  async adminDelete(id) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, { method: 'DELETE', headers: this._operator() });
    if (r.status !== 200 && r.status !== 204) throw new Error(`admin delete ${id}: ${describeResponse(r)}`);
  }

  /** POST /invite (with `data` as user metadata when given). Returns the raw response. */
  invite(email, data) {
    const body = { email };
    if (data) body.data = data;
    return rawRequest(`${this.apiUrl}/invite`, {
      method: 'POST',
      headers: { ...this._operator(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }
}

function addressedTo(toHeader, address) {
  if (!toHeader) return false;
  const esc = address.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s<,:"])${esc}($|[\\s>,"])`).test(toHeader.toLowerCase());
}

// ---- HTTP and JWT helpers -----------------------------------------------------------------------

/**
 * Plain fetch (never through a suite's fetch spy), `timeoutMs` per request. Returns {status,
 * headers (lower-case names; a repeated header joined with ", ", but only the last set-cookie),
 * text, json (undefined when not JSON)}.
 */
export async function rawRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const r = await realFetch()(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
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

/** Multi-line description of a rawRequest() response, for assertion messages. */
export function describeResponse(r) {
  const hs = Object.entries(r.headers)
    .map(([k, v]) => `    ${k}: ${v}`)
    .join('\n');
  return `status ${r.status}\n  headers:\n${hs}\n  body: ${r.text.length > 1500 ? `${r.text.slice(0, 1500)}…` : r.text}`;
}

/** Payload of a compact JWS (no verification). */
export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString('utf8'));
}

/** {parts, header, payload} of a compact JWS (no verification); throws unless it has three parts. */
export function decodeJwt(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS (${parts.length} parts): ${String(jwt).slice(0, 200)}`);
  return {
    parts,
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
  };
}

// ---- Minimal MIME reading: headers (unfolded), multipart bodies, quoted-printable and base64 ----

/** {headers: {lower-case name: decoded value (first one)}, bodies: [decoded text of each leaf part], raw}. */
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

/** Quoted-printable (soft line breaks, =XX escapes) to UTF-8 text. */
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
