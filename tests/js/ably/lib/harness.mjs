// Starts the compiled chipflap binary the way a user does (`chipflap serve` + environment) on
// 127.0.0.1, and talks to its GoTrue API over plain HTTP (fetch) to make users, sessions and bans.
// Same approach as tests/js/gotrue/lib/harness.mjs (kept separate so the suites evolve independently).

import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (tests/js/ably/lib -> ../../../..). */
export const repoRoot = resolve(here, '..', '..', '..', '..');

/** The Ably key every server of this suite gets (the key of spec/ably.md's test vectors). */
export const ABLY_KEY = 'appId1.keyId1:s3cr3tKeyValue_ForTests-0123';
export const ABLY_KEY_NAME = ABLY_KEY.slice(0, ABLY_KEY.indexOf(':'));
export const ABLY_KEY_SECRET = ABLY_KEY.slice(ABLY_KEY.indexOf(':') + 1);
export const JWT_SECRET = 'ably-js-compat-suite-jwt-secret-0123456789';
export const OPERATOR_TOKEN = 'ably-js-compat-suite-operator-token-0123456789';
/** Path of the token endpoint (DESIGN.md §1). */
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
 * Starts `chipflap serve` on a free port with a fresh temporary directory.
 * `ablyRestUrl`: where revocations go (CHIPFLAP_ABLY_REST_URL); `ablyKey`: ABLY_APIKEY (null = unset).
 */
export async function startServer({ ablyKey = ABLY_KEY, ablyRestUrl, extraEnv = {}, startTimeoutMs = 30_000 } = {}) {
  const bin = ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), 'chipflap-ably-js-'));
  const port = await freePort();
  const siteUrl = `http://127.0.0.1:${port}`;
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
    ABLY_APIKEY: ablyKey ?? undefined,
    CHIPFLAP_ABLY_REST_URL: ablyRestUrl,
    RUST_LOG: 'warn',
    ...extraEnv,
  });
  const server = new Server({ bin, dir, port, siteUrl, env });
  await server._start(startTimeoutMs);
  return server;
}

export class Server {
  constructor({ bin, dir, port, siteUrl, env }) {
    Object.assign(this, { bin, dir, port, siteUrl, env });
    this.apiUrl = `${siteUrl}/.netlify/identity`;
    /** Absolute authUrl for ably-js (Node cannot use a relative one). */
    this.authUrl = `${siteUrl}${ABLY_ENDPOINT_PATH}`;
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

  // ---- GoTrue API helpers (plain HTTP) -------------------------------------------------------

  /** Creates a confirmed user through the admin API (operator bearer). Returns the user JSON. */
  async createUser(email, password, { confirm = true } = {}) {
    const r = await rawRequest(`${this.apiUrl}/admin/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email, password, confirm }),
    });
    if (r.status !== 200 && r.status !== 201) throw new Error(`admin create ${email}: ${describe(r)}`);
    if (!r.json?.id) throw new Error(`admin create ${email}: no id in ${r.text}`);
    return r.json;
  }

  /** Unconfirmed signup (POST /signup). Returns the user JSON. */
  async signup(email, password) {
    const r = await rawRequest(`${this.apiUrl}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    if (r.status !== 200) throw new Error(`signup ${email}: ${describe(r)}`);
    return r.json;
  }

  /** Password grant. Returns {access_token, refresh_token, ...}. */
  async login(email, password) {
    const r = await rawRequest(`${this.apiUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
    });
    if (r.status !== 200 || !r.json?.access_token) throw new Error(`login ${email}: ${describe(r)}`);
    return r.json;
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

  /** Bans with the seed's convention: app_metadata.roles = ["banned"] (DESIGN.md §5). */
  ban(id) {
    return this.adminUpdate(id, { app_metadata: { roles: ['banned'] } });
  }

  async adminDelete(id) {
    const r = await rawRequest(`${this.apiUrl}/admin/users/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    });
    if (r.status !== 200 && r.status !== 204) throw new Error(`admin delete ${id}: ${describe(r)}`);
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

/** fetch wrapper: {status, headers (lower-case names; set-cookie joined), text, json}. 10 s timeout. */
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

/** One-line-per-field description of a raw response, for assertion messages. */
export function describe(r) {
  const hs = Object.entries(r.headers)
    .map(([k, v]) => `    ${k}: ${v}`)
    .join('\n');
  return `status ${r.status}\n  headers:\n${hs}\n  body: ${r.text.length > 1500 ? `${r.text.slice(0, 1500)}…` : r.text}`;
}

// ---- JWT helpers ----------------------------------------------------------------------------

export function b64urlJson(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
}

export function decodeJwt(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS (${parts.length} parts): ${String(jwt).slice(0, 200)}`);
  return {
    parts,
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
  };
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
