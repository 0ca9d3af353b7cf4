// Starts the compiled chipflap binary the way a user does (`chipflap serve` + environment),
// reads the mails it writes to its outbox, runs its CLI, and stops it.
// Copied from tests/js/gotrue/lib/harness.mjs (not shared, so each suite can change on its own);
// differences: GOTRUE_OPERATOR_TOKEN is set, the build uses SQLX_OFFLINE=true, and
// Server#systemToken() runs `chipflap token system`.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));

/** HS256 key the servers sign with (32+ bytes). */
export const JWT_SECRET = 'netlify-identity-suite-secret-0123456789abcdef';
/** GOTRUE_OPERATOR_TOKEN of the servers: a static admin bearer (DESIGN §3). */
export const OPERATOR_TOKEN = 'netlify-identity-suite-operator-token-0123456789abcdef';
/** Repository root (tests/js/netlify-identity/lib -> ../../../..). */
export const repoRoot = resolve(here, '..', '..', '..', '..');

/** Path of the binary under test: $CHIPFLAP_BIN, else <repo>/target/debug/chipflap. */
export function binaryPath() {
  return process.env.CHIPFLAP_BIN ? resolve(process.env.CHIPFLAP_BIN) : join(repoRoot, 'target', 'debug', 'chipflap');
}

/**
 * Makes sure the binary exists. When CHIPFLAP_BIN is not set and target/debug/chipflap is
 * missing, runs `SQLX_OFFLINE=true cargo build --bin chipflap` in the repository root (it waits
 * for the cargo lock when another build holds it).
 */
export function ensureBinary() {
  const bin = binaryPath();
  if (existsSync(bin)) return bin;
  if (process.env.CHIPFLAP_BIN) {
    throw new Error(`CHIPFLAP_BIN=${process.env.CHIPFLAP_BIN} does not exist`);
  }
  process.stderr.write(`# ${bin} missing: running SQLX_OFFLINE=true cargo build --bin chipflap in ${repoRoot}\n`);
  const r = spawnSync('cargo', ['build', '--bin', 'chipflap'], {
    cwd: repoRoot,
    env: { ...process.env, SQLX_OFFLINE: 'true' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
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

/** Environment for the server and the CLI: the caller's env minus chipflap/GoTrue settings, plus ours. */
function childEnv(overrides) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(GOTRUE_|CHIPFLAP_|ABLY_)/.test(k) || k === 'DATABASE_URL' || k === 'PORT' || k === 'RUST_LOG') continue;
    env[k] = v;
  }
  return { ...env, ...overrides };
}

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory.
 * Returns a Server handle (see class below).
 */
export async function startServer({ extraEnv = {}, startTimeoutMs = 30_000 } = {}) {
  const bin = ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), 'chipflap-nid-'));
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
    RUST_LOG: 'warn',
    ...extraEnv,
  });
  const server = new Server({ bin, dir, port, siteUrl, env });
  await server._start(startTimeoutMs);
  return server;
}

export class Server {
  constructor({ bin, dir, port, siteUrl, env }) {
    this.bin = bin;
    this.dir = dir;
    this.port = port;
    this.siteUrl = siteUrl;
    /** API root to hand to the clients (absolute: Node's fetch cannot use the relative default). */
    this.apiUrl = `${siteUrl}/.netlify/identity`;
    this.env = env;
    this.outbox = env.CHIPFLAP_MAIL_DIR;
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
    let exitInfo = null;
    this.exited.then((info) => {
      exitInfo = info;
    });

    const deadline = Date.now() + timeoutMs;
    let lastErr = '';
    while (Date.now() < deadline) {
      if (exitInfo) {
        await this.stop();
        throw new Error(
          `chipflap serve exited before becoming healthy (code=${exitInfo.code} signal=${exitInfo.signal})\n` +
            `--- server output ---\n${this.log.slice(-4000)}`,
        );
      }
      try {
        const r = await (globalThis.__chipflapRealFetch || fetch)(`${this.apiUrl}/health`, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) {
          await r.arrayBuffer();
          return;
        }
        lastErr = `status ${r.status}: ${(await r.text()).slice(0, 300)}`;
      } catch (err) {
        lastErr = String(err.cause?.code || err.message);
      }
      await sleep(100);
    }
    await this.stop();
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
    if (keep) {
      process.stderr.write(`# chipflap temp dir kept: ${this.dir} (log: ${this.logPath})\n`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** The last `n` characters of the server's stdout+stderr. */
  logTail(n = 3000) {
    return this.log.slice(-n);
  }

  /** Runs `chipflap <args>` with the server's environment. Returns {status, stdout, stderr}. */
  cli(args) {
    const r = spawnSync(this.bin, args, { cwd: this.dir, env: this.env, encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `chipflap token system`: a system JWT (sub "0"), what Netlify hands functions as the identity token. */
  systemToken() {
    return this.cliOk(['token', 'system']).stdout.trim().split(/\s+/).pop();
  }

  /** `chipflap users add --email E --password P --confirmed [--admin]`. */
  addUser({ email, password, admin = false, confirmed = true }) {
    const args = ['users', 'add', '--email', email, '--password', password];
    if (admin) args.push('--admin');
    if (confirmed) args.push('--confirmed');
    return this.cliOk(args);
  }

  /** Like cli(), but throws with the output when the exit status is not 0. */
  cliOk(args) {
    const r = this.cli(args);
    if (r.status !== 0) {
      throw new Error(`chipflap ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r;
  }

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
   * Waits for the newest mail addressed to `to` whose decoded body contains `#<kind>_token=`,
   * considering only files not in `since` (a Set from mailMark()). Returns
   * { token, link, mail } where link is the full URL of the first such link.
   */
  async waitMail({ to, kind, since = new Set(), timeoutMs = 10_000 }) {
    const deadline = Date.now() + timeoutMs;
    const linkRe = new RegExp(`(https?://[^\\s"'<>]*?)#${kind}_token=([A-Za-z0-9_-]+)`);
    const tokenRe = new RegExp(`#${kind}_token=([^\\s"'<>&]+)`);
    for (;;) {
      for (const m of this.mails()) {
        if (since.has(m.name) || !addressedTo(m.headers.to, to)) continue;
        const text = m.bodies.join('\n');
        const link = text.match(linkRe);
        if (link) return { token: link[2], link: `${link[1]}#${kind}_token=${link[2]}`, base: link[1], mail: m };
        const loose = text.match(tokenRe);
        if (loose) {
          // A token that is not base64url (or a link without a URL in front): report it as found,
          // the caller's assertions on `token`/`base` will show what is wrong.
          return { token: loose[1], link: null, base: null, mail: m };
        }
      }
      if (Date.now() > deadline) {
        const seen = this.mails()
          .filter((m) => !since.has(m.name))
          .map((m) => `  ${m.name} To=${m.headers.to} Subject=${m.headers.subject}`)
          .join('\n');
        throw new Error(
          `no new mail to ${to} with #${kind}_token= within ${timeoutMs} ms; new mails in ${this.outbox}:\n${seen || '  (none)'}`,
        );
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

// ---------------------------------------------------------------------------
// Minimal MIME reading: headers (unfolded), multipart bodies, quoted-printable and base64.

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

function header(list, name) {
  const h = list.find(([k]) => k === name);
  return h ? h[1] : '';
}

function collectBodies(headers, body, out) {
  const ctype = header(headers, 'content-type') || 'text/plain';
  const boundary = ctype.match(/boundary="?([^";]+)"?/i);
  if (/^multipart\//i.test(ctype) && boundary) {
    const sep = `--${boundary[1]}`;
    const parts = body.split(sep).slice(1);
    for (const part of parts) {
      if (part.startsWith('--')) break;
      const p = splitHeaders(part.replace(/^\r?\n/, ''));
      collectBodies(p.headers, p.body, out);
    }
    return;
  }
  const cte = header(headers, 'content-transfer-encoding').toLowerCase();
  let text = body;
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
    enc.toLowerCase() === 'b'
      ? Buffer.from(data, 'base64').toString('utf8')
      : decodeQP(data.replace(/_/g, ' ')),
  );
}

/** Decodes the payload of a JWT (no verification). */
export function jwtPayload(jwt) {
  const part = String(jwt).split('.')[1];
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Plain fetch against the API (not through the spy's client state): returns {status, headers, text, json}. */
export async function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  const doFetch = globalThis.__chipflapRealFetch || fetch;
  const r = await doFetch(url, { method, headers, body });
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
