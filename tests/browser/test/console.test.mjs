// The admin console (/console/, DESIGN.md §7) end to end in Debian's headless Chromium: an admin
// logs in, finds a user by part of the email, bans them for one day with a reason, and the ban
// takes effect everywhere (DESIGN.md §5): the refresh token is dead, the Ably endpoint answers 403
// for the still-unexpired access token, Ably revocation reached the (stand-in) Ably REST API and is
// shown on the page, and the audit log lists the ban with the admin's email and the reason. Then
// the admin unbans and the user can log in again.
//
// Every console step is driven through the real UI (fill + click); only the user's own client
// actions (login, refresh, Ably token) go over the API, as an app would.
//
// Screenshots: docs/console-users.png and docs/console-user.png when UPDATE_SCREENSHOTS=1,
// otherwise tests/browser/tmp/screenshots/ (ignored by git).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AblyRevocationStandIn,
  OPERATOR_TOKEN,
  describe as describeResponse,
  jwtPayload,
  rawRequest,
  repoRoot,
  startServer,
  suiteRoot,
  waitFor,
} from '../lib/harness.mjs';
import { launchChromium, newWatchedPage, scriptCounts } from '../lib/browser.mjs';

const ADMIN_EMAIL = 'admin@example.org';
const ADMIN_PASSWORD = 'console admin passphrase 4 tests';
const PASSWORD = 'correct horse battery staple';
const TARGET = { email: 'margaret.hamilton@example.com', fullName: 'Margaret Hamilton' };
const SEARCH = 'hamilt'; // part of the target's email only
const REASON = 'Spamming the comment threads (ticket #4711)';

// Realistic people for the screenshot. kind: confirmed (admin API) | unconfirmed (POST /signup).
const PEOPLE = [
  { email: 'ada.lovelace@example.org', fullName: 'Ada Lovelace', kind: 'confirmed', roles: ['editor'] },
  { email: 'grace.hopper@example.org', fullName: 'Grace Hopper', kind: 'confirmed' },
  { email: 'alan.turing@example.net', fullName: 'Alan Turing', kind: 'confirmed' },
  { email: 'linus.t@example.com', fullName: 'Linus Torvalds', kind: 'unconfirmed' },
  { email: TARGET.email, fullName: TARGET.fullName, kind: 'confirmed' },
  { email: 'katherine.johnson@example.org', fullName: 'Katherine Johnson', kind: 'confirmed' },
  { email: 'dennis.ritchie@example.net', fullName: 'Dennis Ritchie', kind: 'unconfirmed' },
  { email: 'barbara.liskov@example.com', fullName: 'Barbara Liskov', kind: 'confirmed', roles: ['editor', 'moderator'] },
  { email: 'cheap-watches-4u@example.net', fullName: 'Cheap Watches', kind: 'confirmed', banDuration: '720h' },
];

const updateScreenshots = process.env.UPDATE_SCREENSHOTS === '1';
const tmpShots = join(suiteRoot, 'tmp', 'screenshots');
const docsShots = updateScreenshots ? join(repoRoot, 'docs') : tmpShots;

let standin;
let server;
let browser;
let page;
let problems; // console errors, page errors, failed requests, HTTP >= 400 seen by the page
const visited = []; // {url, inline, external} for every console page the test looked at
let targetId;
let tokens; // the target's session from before the ban

/** Absolute console URL. */
const consoleUrl = (path) => `${server.siteUrl}/console${path}`;

/** Records the current page's scripts (no inline script here; none at all is asserted at the end). */
async function checkpoint() {
  const counts = await scriptCounts(page);
  visited.push({ url: page.url(), ...counts });
  assert.equal(counts.inline, 0, `inline <script> on ${page.url()}`);
  return counts;
}

/** Adds the server log to a failure message. */
const withLog = (msg) => `${msg}\n--- server log tail ---\n${server.logTail(1500)}`;

/**
 * Screenshot of the current page. `docs: true` ones go to docs/ under UPDATE_SCREENSHOTS=1 (the
 * README shows them); the others only ever go to tmp/screenshots/ (for looking at a run).
 */
async function screenshot(name, { docs = false, fullPage = false } = {}) {
  const dir = docs ? docsShots : tmpShots;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  await page.screenshot({ path, fullPage, animations: 'disabled', caret: 'hide' });
  process.stderr.write(`screenshot: ${path}\n`);
  return path;
}

/** The text of each cell of each body row of the table matching `selector`. */
function tableRows(selector) {
  return page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
}

describe('admin console in headless Chromium', () => {
  before(async () => {
    standin = await new AblyRevocationStandIn().listen();
    server = await startServer({ ablyRestUrl: standin.url });

    server.cliOk(['users', 'add', '--email', ADMIN_EMAIL, '--password-stdin', '--admin', '--confirmed'], { input: `${ADMIN_PASSWORD}\n` });
    // The CLI takes no name; give the admin one so the users page looks like a real site.
    const admin = (await server.listUsers()).find((u) => u.email === ADMIN_EMAIL);
    assert.ok(admin, `${ADMIN_EMAIL} created by the CLI is listed by GET /admin/users`);
    await server.adminUpdate(admin.id, { user_metadata: { full_name: 'Site Admin' } });
    for (const p of PEOPLE) {
      const user =
        p.kind === 'unconfirmed'
          ? await server.signup(p.email, PASSWORD, { fullName: p.fullName })
          : await server.createUser(p.email, PASSWORD, { fullName: p.fullName });
      p.id = user.id;
      if (p.roles) await server.adminUpdate(p.id, { app_metadata: { roles: p.roles } });
      if (p.banDuration) await server.adminUpdate(p.id, { ban_duration: p.banDuration, ban_reason: 'Link spam' });
    }
    targetId = PEOPLE.find((p) => p.email === TARGET.email).id;

    // The target's own session, as their app has it before the ban.
    tokens = await server.login(TARGET.email, PASSWORD);
    const ably = await server.ablyToken(tokens.access_token);
    assert.equal(ably.status, 200, withLog(`before the ban the Ably endpoint must answer 200\n${describeResponse(ably)}`));

    browser = await launchChromium();
    ({ page, problems } = await newWatchedPage(browser));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await standin?.close();
  });

  test('the admin logs in through the login form', async () => {
    await page.goto(consoleUrl('/login'));
    await checkpoint();
    await page.locator('input[name=email]').fill(ADMIN_EMAIL);
    await page.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(/\/console\/users(\?|$)/), page.getByRole('button', { name: 'Log in', exact: true }).click()]);
    await checkpoint();
    assert.equal(await page.locator('header .who').textContent(), ADMIN_EMAIL);
    assert.equal(await page.locator('h1').textContent(), 'Users');
    // The session cookie is HttpOnly and SameSite=Strict (DESIGN.md §7).
    const cookies = await page.context().cookies();
    const session = cookies.filter((c) => c.httpOnly);
    assert.ok(session.length >= 1, `an HttpOnly console session cookie, got ${JSON.stringify(cookies)}`);
    for (const c of session) assert.equal(c.sameSite, 'Strict', `cookie ${c.name} must be SameSite=Strict`);
  });

  test('the users page lists everyone (screenshot)', async () => {
    const rows = await tableRows('table.users');
    const emails = rows.map((r) => r[0]);
    for (const e of [ADMIN_EMAIL, ...PEOPLE.map((p) => p.email)]) assert.ok(emails.includes(e), `${e} listed in ${JSON.stringify(emails)}`);
    await screenshot('console-users.png', { docs: true });
  });

  test('searching by part of the email finds the user', async () => {
    await page.locator('input[name=q]').fill(SEARCH);
    await Promise.all([page.waitForURL((u) => new URL(u).searchParams.get('q') === SEARCH), page.getByRole('button', { name: 'Search', exact: true }).click()]);
    await checkpoint();
    const rows = await tableRows('table.users');
    assert.deepEqual(
      rows.map((r) => r[0]),
      [TARGET.email],
      `exactly the target for q=${SEARCH}`,
    );
    assert.equal(rows[0][1], TARGET.fullName);
    const link = page.locator('table.users a[href^="/console/users/"]', { hasText: TARGET.email });
    assert.equal(await link.getAttribute('href'), `/console/users/${targetId}`);
    await Promise.all([page.waitForURL(new RegExp(`/console/users/${targetId}$`)), link.click()]);
    await checkpoint();
    assert.equal(await page.locator('h1').textContent(), TARGET.email);
  });

  test('bans the user for one day with a reason', async () => {
    const select = page.locator('select[name=duration]');
    await select.selectOption({ label: '1 day' });
    assert.equal(await select.inputValue(), '24h');
    await page.locator('input[name=reason]').fill(REASON);
    const clickedAt = Date.now();
    await Promise.all([page.waitForURL(/\?done=banned$/), page.getByRole('button', { name: 'Ban', exact: true }).click()]);
    await checkpoint();

    assert.equal((await page.locator('.heading .badge').textContent()).trim(), 'Banned');
    assert.equal(await page.getByRole('button', { name: 'Unban', exact: true }).count(), 1, 'an Unban button');
    assert.equal(await page.locator('select[name=duration]').count(), 0, 'no ban form while banned');

    // One day, as the API reports it.
    const r = await rawRequest(`${server.apiUrl}/admin/users/${targetId}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    assert.equal(r.status, 200, describeResponse(r));
    const until = Date.parse(r.json.banned_until);
    const day = 24 * 3600 * 1000;
    assert.ok(until >= clickedAt + day - 5000 && until <= Date.now() + day + 5000, `banned_until ${r.json.banned_until} ≈ now + 1 day`);

    // Ably revocation: exactly one revokeTokens call for this user reached "Ably" …
    const revs = await waitFor(() => standin.revocationsFor(targetId).length > 0 && standin.revocationsFor(targetId), { timeoutMs: 10_000 });
    assert.ok(revs, withLog('no revokeTokens request for the user reached the Ably stand-in'));
    assert.equal(revs.length, 1, `one revocation, got ${JSON.stringify(revs.map((x) => x.body))}`);
    assert.deepEqual(revs[0].json.targets, [`clientId:${targetId}`]);

    // … and the page says so (the revocation runs in the background: reload until it shows).
    const line = page.locator('p.flash[role=status]', { hasText: 'Live Ably tokens were revoked at' });
    const shown = await waitFor(
      async () => {
        if ((await line.count()) > 0) return true;
        await page.reload();
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.ok(shown, withLog(`the page never showed the Ably revocation line; flashes: ${JSON.stringify(await page.locator('.flash').allTextContents())}`));
    assert.match(await line.getAttribute('class'), /\bok\b/);
    await checkpoint();
    await screenshot('console-user.png', { docs: true });
    await screenshot('console-user-full.png', { fullPage: true });
  });

  test("the user's refresh token no longer works", async () => {
    const r = await server.refreshGrant(tokens.refresh_token);
    assert.equal(r.status, 400, describeResponse(r));
    assert.equal(r.json?.error, 'invalid_grant', describeResponse(r));
  });

  test("the Ably endpoint answers 403 for the user's still-unexpired access token", async () => {
    const { exp } = jwtPayload(tokens.access_token);
    assert.ok(exp * 1000 > Date.now() + 60_000, `the access token is still valid for a while (exp ${exp})`);
    const r = await server.ablyToken(tokens.access_token);
    assert.equal(r.status, 403, describeResponse(r));
    assert.equal(r.json?.error?.code, 40300, describeResponse(r));
    assert.equal(r.json?.error?.statusCode, 403, describeResponse(r));
  });

  test('the audit page lists the ban with the admin and the reason', async () => {
    await Promise.all([page.waitForURL(/\/console\/audit$/), page.getByRole('link', { name: 'Audit log', exact: true }).click()]);
    await checkpoint();
    await page.locator('select[name=action]').selectOption('user_banned');
    await Promise.all([page.waitForURL(/[?&]action=user_banned(&|$)/), page.getByRole('button', { name: 'Filter', exact: true }).click()]);
    await checkpoint();
    assert.equal(await page.locator('select[name=action]').inputValue(), 'user_banned', 'the filter stays selected');
    const rows = await tableRows('table.audit'); // When, Action, By, Details
    assert.ok(rows.length >= 1, 'at least one audit row');
    for (const row of rows) assert.equal(row[1], 'user_banned', `only user_banned rows: ${JSON.stringify(rows)}`);
    const ours = rows.filter((row) => row[3].includes(TARGET.email));
    assert.equal(ours.length, 1, `one user_banned row for ${TARGET.email}: ${JSON.stringify(rows)}`);
    assert.equal(ours[0][2], ADMIN_EMAIL, 'By = the admin');
    assert.ok(ours[0][3].includes(`reason: ${REASON}`), `details name the reason: ${ours[0][3]}`);
    await screenshot('console-audit.png', { fullPage: true });
  });

  test('unbans through the Banned filter, and the user can log in again', async () => {
    await Promise.all([page.waitForURL(/\/console\/users$/), page.getByRole('link', { name: 'Users', exact: true }).click()]);
    await Promise.all([
      page.waitForURL(/status=banned/),
      page.locator('nav.filters').getByRole('link', { name: 'Banned', exact: true }).click(),
    ]);
    await checkpoint();
    const banned = (await tableRows('table.users')).map((r) => r[0]).sort();
    assert.deepEqual(banned, ['cheap-watches-4u@example.net', TARGET.email].sort(), 'the Banned filter');
    await Promise.all([
      page.waitForURL(new RegExp(`/console/users/${targetId}$`)),
      page.locator('table.users a', { hasText: TARGET.email }).click(),
    ]);

    await Promise.all([page.waitForURL(/\?done=unbanned$/), page.getByRole('button', { name: 'Unban', exact: true }).click()]);
    await checkpoint();
    assert.notEqual((await page.locator('.heading .badge').textContent()).trim(), 'Banned');
    assert.equal(await page.getByRole('button', { name: 'Ban', exact: true }).count(), 1, 'the ban form is back');
    assert.equal(await page.locator('p.flash[role=status]', { hasText: 'Ably' }).count(), 0, 'no Ably line once unbanned');

    const login = await server.passwordGrant(TARGET.email, PASSWORD);
    assert.equal(login.status, 200, withLog(describeResponse(login)));
    const ably = await server.ablyToken(login.json.access_token);
    assert.equal(ably.status, 200, describeResponse(ably));
    // Unbanning restores nothing but the right to log in (DESIGN.md §5).
    const old = await server.refreshGrant(tokens.refresh_token);
    assert.equal(old.status, 400, `the pre-ban refresh token stays dead\n${describeResponse(old)}`);
  });

  test('no console errors, failed requests or inline scripts on any page', () => {
    assert.ok(visited.length >= 8, `pages checked: ${visited.length}`);
    assert.deepEqual(
      visited.filter((v) => v.inline + v.external > 0),
      [],
      'the console pages load no JavaScript',
    );
    assert.deepEqual(problems, []);
  });
});
