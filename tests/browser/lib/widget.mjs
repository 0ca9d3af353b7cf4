// Helpers for driving the seed application's page (chipflap's built-in demo page at `/`) with the
// real netlify-identity-widget in headless Chromium (spec/clients.md §2, §3, §4b).
//
// The widget bundles come from npm (pinned in package.json) and are served by chipflap itself from
// CHIPFLAP_DEMO_VENDOR_DIR, so the page loads nothing from a CDN.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suiteRoot } from './harness.mjs';

/** The two widget generations under test (spec/clients.md §0): npm package folder → version. */
export const GENERATIONS = [
  { version: '2.0.3', pkg: 'netlify-identity-widget' },
  // Byte-identical to https://identity.netlify.com/v1/netlify-identity-widget.js, which the seed page loads.
  { version: '1.9.2', pkg: 'netlify-identity-widget-v1' },
];

/** The made-up host the page runs on (mapped to 127.0.0.1 by Chromium's host resolver rules). */
export const SITE_HOST = 'site.test';

/** Absolute path of a file inside an installed npm package. */
export const packageFile = (pkg, rel) => join(suiteRoot, 'node_modules', pkg, rel);

/**
 * A fresh directory for CHIPFLAP_DEMO_VENDOR_DIR holding `netlify-identity-widget.js` from `pkg`
 * and `ably.min.js` from ably, checking the installed versions first. Returns {dir, widgetPath, remove()}.
 */
export function makeVendorDir({ pkg, version }) {
  const installed = JSON.parse(readFileSync(packageFile(pkg, 'package.json'), 'utf8')).version;
  if (installed !== version) throw new Error(`node_modules/${pkg} is ${installed}, expected ${version}: run npm ci`);
  const dir = mkdtempSync(join(tmpdir(), `chipflap-vendor-${version}-`));
  const widgetPath = packageFile(pkg, 'build/netlify-identity-widget.js');
  copyFileSync(widgetPath, join(dir, 'netlify-identity-widget.js'));
  copyFileSync(packageFile('ably', 'build/ably.min.js'), join(dir, 'ably.min.js'));
  return { dir, widgetPath, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Verifies a compact HS256 JWS with `secret`; returns {header, claims} or throws with the reason.
 */
export function verifyHs256(jwt, secret) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${String(jwt).slice(0, 80)}`);
  const [h, p, s] = parts;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  if (header.alg !== 'HS256') throw new Error(`alg ${header.alg}, expected HS256`);
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, 'base64url');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new Error('HS256 signature does not verify');
  return { header, claims: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) };
}

/**
 * The demo page in one browser context, with the widget's iframe and what the page saw.
 * Every request/response on the page is recorded, so tests can assert which identity calls
 * happened and with which headers.
 */
export class SeedPage {
  constructor(context, page, siteUrl) {
    Object.assign(this, { context, page, siteUrl });
    this.origin = new URL(siteUrl).origin;
    /** Every widget iframe interaction goes through this frame locator. */
    this.frame = page.frameLocator('#netlify-identity-widget');
    /** {method, url, path, headers} of every request the page made. */
    this.requests = [];
    /** Responses of the Ably token endpoint, in order: {url, status, body: Promise<string>}. */
    this.endpointResponses = [];
    /** Problems the page reported: console errors/warnings, uncaught errors, failed requests, HTTP >= 400. */
    this.problems = [];
    page.on('request', (req) => {
      const u = new URL(req.url());
      this.requests.push({ method: req.method(), url: req.url(), origin: u.origin, path: u.pathname, headers: req.headers() });
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') {
        this.problems.push({ kind: 'console', text: `console.${msg.type()}: ${msg.text()}`, url: msg.location()?.url ?? '' });
      }
    });
    page.on('pageerror', (err) => this.problems.push({ kind: 'pageerror', text: `pageerror: ${err.message}`, url: '' }));
    page.on('requestfailed', (req) =>
      this.problems.push({ kind: 'requestfailed', text: `requestfailed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ''}`, url: req.url() }),
    );
    page.on('response', (res) => {
      if (new URL(res.url()).pathname === '/.netlify/functions/ably-jwt') {
        const body = res.text().catch((e) => `(body unavailable: ${e.message})`);
        this.endpointResponses.push({ url: res.url(), status: res.status(), body });
      }
      if (res.status() >= 400) {
        this.problems.push({ kind: 'http', status: res.status(), text: `HTTP ${res.status()}: ${res.request().method()} ${res.url()}`, url: res.url() });
      }
    });
  }

  /**
   * `webSocket`: a Playwright `routeWebSocket` handler standing in for Ably's realtime host; by
   * default every WebSocket is closed at once (the page is offline).
   */
  static async open(browser, siteUrl, { webSocket } = {}) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
    // Every wait fails instead of hanging.
    context.setDefaultTimeout(15_000);
    context.setDefaultNavigationTimeout(15_000);
    // The page is offline except for the site: Ably's realtime hosts (and anything else) are not
    // reachable from the test, so make that deterministic instead of depending on the network.
    const origin = new URL(siteUrl).origin;
    await context.route(
      (url) => url.origin !== origin && url.protocol !== 'about:' && url.protocol !== 'data:',
      (route) => route.abort('internetdisconnected'),
    );
    await context.routeWebSocket(/.*/, webSocket ?? ((ws) => ws.close({ code: 1011, reason: 'offline test' })));
    const page = await context.newPage();
    return new SeedPage(context, page, siteUrl);
  }

  async close() {
    await this.context.close().catch(() => {});
  }

  /** Requests to the identity API (`/.netlify/identity/...`) made since index `from`. */
  identityRequests(from = 0) {
    return this.requests.slice(from).filter((r) => r.origin === this.origin && r.path.startsWith('/.netlify/identity/'));
  }

  /** Loads `url` (default: the site root) and waits for the widget to render its menu. */
  async load(url = `${this.siteUrl}/`) {
    await this.page.goto(url, { waitUntil: 'load' });
    await this.page.waitForFunction(() => typeof window.netlifyIdentity === 'object' && !!window.netlifyIdentity);
    await this.page.locator('[data-netlify-identity-menu] ul.netlify-identity-menu').waitFor();
  }

  /**
   * Opens a link from a mail the way a person does: a full page load (about:blank first; the widget
   * only reads the hash when its iframe loads, a hash-only change does nothing, spec §2.3).
   */
  async openMailLink(link) {
    await this.page.goto('about:blank');
    await this.load(link);
  }

  /** localStorage['gotrue.user'] parsed, or null. */
  storedUser() {
    return this.page.evaluate(() => JSON.parse(localStorage.getItem('gotrue.user') || 'null'));
  }

  /** Waits until localStorage['gotrue.user'] holds a user with this email; returns it. */
  async waitStoredUser(email, { timeoutMs = 15_000 } = {}) {
    const handle = await this.page.waitForFunction(
      (e) => {
        const u = JSON.parse(localStorage.getItem('gotrue.user') || 'null');
        return u && u.id && u.email === e ? u : null;
      },
      email,
      { timeout: timeoutMs },
    );
    return handle.jsonValue();
  }

  /** Waits until localStorage['gotrue.user'] is gone. */
  async waitNoStoredUser({ timeoutMs = 15_000 } = {}) {
    await this.page.waitForFunction(() => localStorage.getItem('gotrue.user') === null, null, { timeout: timeoutMs });
  }

  /** The menu once logged in: "Logged in as <name or email>" with a Log out button. */
  async waitMenuLoggedIn(shownName) {
    const user = this.page.locator('[data-netlify-identity-menu] .netlify-identity-user');
    await user.waitFor();
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-logout').waitFor();
    const text = (await user.textContent()).trim();
    if (shownName !== undefined && text !== shownName) throw new Error(`menu shows "${text}", expected "${shownName}"`);
    return text;
  }

  /** The menu when logged out: Sign up and Log in buttons. */
  async waitMenuLoggedOut() {
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-signup').waitFor();
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-login').waitFor();
  }

  /** The iframe element is shown and its dialog is open. */
  async waitModalOpen() {
    await this.page.locator('iframe#netlify-identity-widget').waitFor({ state: 'visible' });
    await this.frame.locator('.modalContainer[aria-hidden=false]').waitFor();
  }

  /** The iframe is hidden (the seed page closes the modal on `login`). */
  async waitModalClosed() {
    await this.page.locator('iframe#netlify-identity-widget').waitFor({ state: 'hidden' });
  }

  /** Text of the modal's flash message / error, or '' (for failure messages). */
  async modalText() {
    try {
      return (await this.frame.locator('body').innerText({ timeout: 2000 })).replace(/\s+/g, ' ').trim();
    } catch {
      return '(no widget iframe)';
    }
  }

  /** Sign up through the menu's "Sign up" and the modal's form. Resolves when the widget says "check your email". */
  async signUp({ name, email, password }) {
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-signup').click();
    await this.waitModalOpen();
    const f = this.frame;
    await f.locator('input[name=name]').fill(name);
    await f.locator('input[name=email]').fill(email);
    await f.locator('input[name=password]').fill(password);
    await f.locator('form button[type=submit]').click();
  }

  /** Log in through the menu's "Log in" and the modal's form. */
  async logIn({ email, password }) {
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-login').click();
    await this.waitModalOpen();
    await this.frame.locator('input[name=name]').waitFor({ state: 'detached' });
    await this.frame.locator('input[name=email]').fill(email);
    await this.frame.locator('input[name=password]').fill(password);
    await this.frame.locator('form button[type=submit]').click();
  }

  /**
   * Log out through the menu: its "Log out" opens the modal on the user page ("Logged in as <name>"),
   * whose "Log out" button logs out. The widget then leaves the modal open on the login page
   * (spec §2.4), so close it. Returns the name the user page showed.
   */
  async logOut() {
    await this.page.locator('[data-netlify-identity-menu] .netlify-identity-logout').click();
    await this.waitModalOpen();
    const shown = (await this.frame.locator('.infoTextEmail').textContent()).trim();
    await this.frame.locator('form button[type=submit]').click();
    await this.waitNoStoredUser();
    await this.waitMenuLoggedOut();
    await this.closeModal();
    return shown;
  }

  /** Closes the modal with its close button if it is open. */
  async closeModal() {
    if (await this.page.locator('iframe#netlify-identity-widget').isVisible()) {
      await this.frame.locator('button.btnClose').click();
      await this.waitModalClosed();
    }
  }

  /**
   * Clicks "authenticate" and waits for the status line to settle (issued or refused). Returns
   * {state, clientId, text, response, body} where response is the page's own
   * `/.netlify/functions/ably-jwt` response (null if the page never asked).
   */
  async authenticate() {
    const endpoint = this.page.waitForResponse((r) => new URL(r.url()).pathname === '/.netlify/functions/ably-jwt', { timeout: 15_000 });
    endpoint.catch(() => {}); // awaited below; don't let an early rejection go unhandled
    const before = this.requests.length;
    // Watch #status's data-state from now on, so an "issued" left over from an earlier click is not
    // mistaken for this click's answer.
    await this.page.evaluate(() => {
      const el = document.getElementById('status');
      window.__statusStates = [];
      window.__statusObserver?.disconnect();
      window.__statusObserver = new MutationObserver(() => window.__statusStates.push(el.dataset.state));
      window.__statusObserver.observe(el, { attributes: true, attributeFilter: ['data-state'] });
    });
    await this.page.locator('#authenticate').click();
    await this.page.waitForFunction(() => {
      const el = document.getElementById('status');
      return window.__statusStates.length > 0 && (el.dataset.state === 'issued' || el.dataset.state === 'refused');
    });
    const status = this.page.locator('#status');
    const state = await status.getAttribute('data-state');
    const clientId = await status.getAttribute('data-client-id');
    const text = (await status.textContent()).trim();
    const asked = this.requests.slice(before).some((r) => r.path === '/.netlify/functions/ably-jwt');
    let response = null;
    let body = null;
    if (asked) {
      response = await endpoint;
      body = await response.text();
    }
    return { state, clientId, text, response, body };
  }
}
