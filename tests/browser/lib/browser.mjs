// Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`), driven by playwright-core.
// playwright-core downloads no browser; `npx playwright install` is never needed.

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

/** $CHROMIUM_BIN, else Debian's /usr/bin/chromium. */
export function chromiumPath() {
  return process.env.CHROMIUM_BIN || '/usr/bin/chromium';
}

/** The flags of spec/clients.md §4b. playwright's launch() adds a fresh --user-data-dir itself. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Chromium. `hosts` are made-up host names mapped to 127.0.0.1
 * (`--host-resolver-rules=MAP <host> 127.0.0.1`), so a page can run on e.g. `http://site.test:<port>/`
 * (the identity widget treats `localhost`/`127.0.0.1` specially, spec/clients.md §4b).
 */
export async function launchChromium({ hosts = [] } = {}) {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(
      `${executablePath} not found: install Debian's Chromium (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_BIN`,
    );
  }
  const args = [...CHROMIUM_ARGS];
  if (hosts.length) args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`);
  return chromium.launch({ executablePath, headless: true, args, timeout: 60_000 });
}

/**
 * A page in a fresh context (1280×800) that records everything that should never happen on the
 * console: console errors/warnings, uncaught page errors, failed requests, HTTP errors.
 */
export async function newWatchedPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, locale: 'en-GB' });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    const url = msg.location()?.url ?? '';
    // Chromium asks for /favicon.ico on its own (the pages link none); its 404 is not the page's error.
    if (new URL(url, 'http://x/').pathname === '/favicon.ico') return;
    problems.push(`console.${msg.type()}: ${msg.text()} (${url})`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`requestfailed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ''}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
  });
  return { context, page, problems };
}

/** Scripts in the current document: {inline, external} counts (the console uses no JavaScript). */
export function scriptCounts(page) {
  return page.$$eval('script', (els) => ({
    inline: els.filter((s) => !s.src).length,
    external: els.filter((s) => !!s.src).length,
  }));
}
