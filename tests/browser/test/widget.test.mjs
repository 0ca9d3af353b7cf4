// The seed application's page (chipflap's built-in demo page at `/`, DESIGN.md §1) end to end in
// Debian's headless Chromium with the real netlify-identity-widget, once per widget generation:
// 2.0.3 (npm latest, gotrue-js 1.0.1) and 1.9.2 (the v1 CDN script the seed article loads,
// gotrue-js 0.9.x). spec/clients.md §2–§4b.
//
// The page runs on http://site.test:<port>/ (a made-up name mapped to 127.0.0.1: on `localhost` the
// widget would ask for a site URL and turn cookies off). Everything a person does goes through the
// page and the widget's iframe (#netlify-identity-widget): sign up, open the mail's link, log in and
// out, recover a password, accept an invite. Only the operator's actions (ban, invite) go over the
// admin API, as a site's function code would do them.
//
// Flows, per generation (each in a fresh browser context):
//   1. signup → confirmation mail → link → logged in → "authenticate" issues a valid Ably JWT for the
//      user (HS256 with the key secret, x-ably-clientId = id) → reload keeps the session → log out →
//      log in again → authenticate again → the admin bans the user → authenticate is refused.
//   2. recovery: "Forgot password?" → mail → link → new-password form → saved → log out → log in
//      with the new password (the old one no longer works).
//   3. invite: the admin invites → mail → link → set-password form → logged in → authenticate.
//      Then an email change (PUT /user {email} with the user's token) → mail to the new address →
//      link → the widget sends the email_change_token → the new address logs in.
//   Finally: no console error, page error, failed or refused request on the site beyond the expected
//   ones (the banned user's 403; Ably's unreachable hosts: the page is kept offline).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AblyRevocationStandIn, ABLY_KEY, ABLY_KEY_NAME, describe as describeResponse, rawRequest, startServer, waitFor } from '../lib/harness.mjs';
import { launchChromium } from '../lib/browser.mjs';
import { GENERATIONS, SITE_HOST, SeedPage, makeVendorDir, verifyHs256 } from '../lib/widget.mjs';

const ABLY_SECRET = ABLY_KEY.slice(ABLY_KEY.indexOf(':') + 1);
const ENDPOINT = '/.netlify/functions/ably-jwt';
// Every step fails instead of hanging: playwright waits are 15 s each (lib/widget.mjs), a test 60 s.
const T = { timeout: 60_000 };
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

for (const generation of GENERATIONS) {
  const v = generation.version;
  const tag = v.replace(/\W/g, ''); // unique, mail-safe per generation

  describe(`seed page with netlify-identity-widget ${v} in headless Chromium`, () => {
    let standin;
    let vendor;
    let server;
    let browser;
    /** Every SeedPage opened, so `after` can close them and the last test can inspect their problems. */
    const pages = [];

    /** Adds the server log and the widget's text to a failure message. */
    const withContext = async (sp, msg) =>
      `${msg}\n--- widget iframe text ---\n${sp ? await sp.modalText() : ''}\n--- server log tail ---\n${server.logTail(1500)}`;

    async function openPage() {
      const sp = await SeedPage.open(browser, server.siteUrl);
      pages.push(sp);
      return sp;
    }

    /**
     * Clicks "authenticate" and asserts the endpoint issued a valid Ably JWT for `userId`: the
     * response intercepted from the page is 200 application/jwt, the HS256 signature verifies with the
     * key secret, kid = key name, x-ably-clientId = the user's id, exp in the future; the page shows it.
     */
    async function assertIssued(sp, userId) {
      const seen = sp.endpointResponses.length;
      const r = await sp.authenticate();
      assert.equal(r.state, 'issued', await withContext(sp, `authenticate: status "${r.text}"; endpoint said ${r.response?.status()} ${r.body}`));
      assert.ok(r.response, 'the page asked the token endpoint');
      assert.equal(r.response.status(), 200);
      const req = r.response.request();
      assert.equal(new URL(req.url()).searchParams.get('id'), userId, 'the seed page sends ?id=<gotrue.user id>');
      assert.match(r.response.headers()['content-type'] ?? '', /^application\/jwt/);
      let verified;
      assert.doesNotThrow(() => {
        verified = verifyHs256(r.body.trim(), ABLY_SECRET);
      }, `the token endpoint's answer is an HS256 JWT signed with the Ably key secret: ${r.body.slice(0, 200)}`);
      const { header, claims } = verified;
      assert.equal(header.kid, ABLY_KEY_NAME);
      assert.equal(claims['x-ably-clientId'], userId);
      const now = Math.floor(Date.now() / 1000);
      assert.ok(Number.isInteger(claims.exp) && claims.exp > now + 60, `exp in the future: ${JSON.stringify(claims)}`);
      assert.ok(Number.isInteger(claims.iat) && claims.iat <= now + 5, `iat not in the future: ${JSON.stringify(claims)}`);
      assert.doesNotThrow(() => JSON.parse(claims['x-ably-capability']), 'x-ably-capability is a JSON string');
      assert.equal(r.clientId, userId, 'the status line names the user as the clientId');
      assert.ok(r.text.includes(`Token issued for clientId ${userId}`), r.text);
      // Then the page starts ably-js with the same authUrl; ably-js's own request (it adds `rnd`) must
      // get a token for the same user too (there is no Ably server here, so the connection itself fails).
      const fromAblyJs = await waitFor(
        () => sp.endpointResponses.slice(seen).find((x) => new URL(x.url).searchParams.has('rnd')),
        { timeoutMs: 10_000 },
      );
      assert.ok(fromAblyJs, 'ably-js asked the authUrl for a token');
      const ablyJsBody = await fromAblyJs.body;
      assert.equal(fromAblyJs.status, 200, `ably-js's authUrl request: ${fromAblyJs.status} ${ablyJsBody}`);
      assert.equal(new URL(fromAblyJs.url).searchParams.get('id'), userId);
      assert.equal(verifyHs256(ablyJsBody.trim(), ABLY_SECRET).claims['x-ably-clientId'], userId);
      return { header, claims };
    }

    before(async () => {
      standin = await new AblyRevocationStandIn().listen();
      vendor = makeVendorDir(generation);
      server = await startServer({ ablyRestUrl: standin.url, siteHost: SITE_HOST, extraEnv: { CHIPFLAP_DEMO_VENDOR_DIR: vendor.dir } });
      browser = await launchChromium({ hosts: [SITE_HOST] });
    }, { timeout: 600_000 }); // may run `cargo build` when the binary is missing

    after(async () => {
      for (const sp of pages) await sp.close();
      await browser?.close().catch(() => {});
      await server?.stop();
      await standin?.close();
      vendor?.remove();
    }, { timeout: 60_000 });

    describe('signup, confirmation, the token endpoint, reload, logout/login, ban', () => {
      const person = { name: 'Ada Lovelace', email: `ada.${tag}@example.org`, password: 'analytical engine 1843' };
      let sp;
      let userId;

      test('the page serves this widget generation and makes no identity request before the modal opens', T, async () => {
        sp = await openPage();
        await sp.load();
        const served = await rawRequest(`${server.baseUrl}/vendor/netlify-identity-widget.js`);
        assert.equal(served.status, 200);
        assert.equal(sha256(served.text), sha256(readFileSync(vendor.widgetPath, 'utf8')), `/vendor/netlify-identity-widget.js is widget ${v}`);
        const src = await sp.page.locator('script[src*="netlify-identity-widget"]').getAttribute('src');
        assert.equal(src, '/vendor/netlify-identity-widget.js');
        await sp.waitMenuLoggedOut();
        await sp.page.waitForLoadState('networkidle');
        assert.equal(await sp.page.locator('#status').getAttribute('data-state'), 'idle');
        assert.deepEqual(
          sp.identityRequests().map((r) => `${r.method} ${r.path}`),
          [],
          'no identity request on a page load without a saved user (spec §2.2)',
        );
        assert.equal(await sp.storedUser(), null);
      });

      test('signs up through the modal; the confirmation mail arrives', T, async () => {
        const mark = server.mailMark();
        const from = sp.requests.length;
        await sp.signUp(person);
        await sp.frame.getByText('A confirmation message was sent to your email').waitFor();
        const calls = sp.identityRequests(from).map((r) => `${r.method} ${r.path}`);
        assert.ok(calls.includes('GET /.netlify/identity/settings'), `settings loaded lazily: ${calls}`);
        assert.ok(calls.includes('POST /.netlify/identity/signup'), `signup posted: ${calls}`);
        const mail = await server.waitMail({ to: person.email, kind: 'confirmation', since: mark });
        person.confirmLink = mail.link;
        assert.equal(mail.base, `${server.siteUrl}/`, `the link points at the site page: ${mail.link}`);
        assert.equal(await sp.storedUser(), null, 'not logged in before confirming');
      });

      test('opening the confirmation link confirms and logs in', T, async () => {
        const from = sp.requests.length;
        await sp.openMailLink(person.confirmLink);
        let user;
        try {
          user = await sp.waitStoredUser(person.email);
        } catch (e) {
          assert.fail(await withContext(sp, `no gotrue.user after the confirmation link: ${e.message}`));
        }
        userId = user.id;
        assert.match(userId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'top-level id (UUID)');
        assert.equal(user.user_metadata?.full_name, person.name);
        assert.ok(user.confirmed_at, 'confirmed_at set');
        assert.ok(user.token?.access_token && user.token?.refresh_token, 'tokens saved');
        const verify = sp.identityRequests(from).find((r) => r.method === 'POST' && r.path === '/.netlify/identity/verify');
        assert.ok(verify, 'POST /verify was sent');
        assert.equal(verify.headers['x-use-cookie'], '1', 'the widget asks for the nf_jwt cookie on a non-local host');
        await sp.waitModalClosed(); // the seed closes the modal on `login`
        await sp.waitMenuLoggedIn();
        assert.equal(new URL(sp.page.url()).hash, '', 'the widget cleared the token from the address bar');
        // The server's own nf_jwt is HttpOnly (plain http here, so not Secure: DESIGN.md §6).
        const cookies = await sp.context.cookies(server.siteUrl);
        const serverCookie = cookies.find((c) => c.name === 'nf_jwt' && c.httpOnly);
        assert.ok(serverCookie, `an HttpOnly nf_jwt cookie from the server: ${JSON.stringify(cookies.map((c) => [c.name, c.httpOnly]))}`);
        assert.equal(serverCookie.value, user.token.access_token, 'the cookie mirrors the access token');
      });

      test('"authenticate" gets a valid Ably JWT for the user from the token endpoint', T, async () => {
        const from = sp.requests.length;
        await assertIssued(sp, userId);
        const call = sp.requests.slice(from).find((r) => r.path === ENDPOINT);
        assert.equal(call.headers.authorization, undefined, 'the seed page sends no bearer: the cookie identifies the caller');
      });

      test('a reload keeps the session', T, async () => {
        const from = sp.requests.length;
        await sp.page.reload({ waitUntil: 'load' });
        await sp.page.waitForFunction(() => !!window.netlifyIdentity);
        await sp.waitMenuLoggedIn(person.email); // user_metadata has full_name, not name: the menu shows the email
        const user = await sp.storedUser();
        assert.equal(user?.id, userId, 'gotrue.user still there');
        if (v.startsWith('2.')) {
          // 2.x validates the restored session with GET /user (spec §2.2); it must not log the user out.
          const checked = await waitFor(() => sp.identityRequests(from).some((r) => r.method === 'GET' && r.path === '/.netlify/identity/user'), {
            timeoutMs: 5000,
          });
          assert.ok(checked, '2.x checks the restored session with GET /user');
          await sp.page.waitForLoadState('networkidle');
          assert.equal((await sp.storedUser())?.id, userId, 'still logged in after GET /user');
          await sp.waitMenuLoggedIn(person.email);
        }
        assert.equal(await sp.page.locator('#status').getAttribute('data-state'), 'idle');
      });

      test('logs out through the menu, logs in again through the modal, and authenticates again', T, async () => {
        const from = sp.requests.length;
        assert.equal(await sp.logOut(), person.name, 'the user page shows the full name');
        assert.ok(
          sp.identityRequests(from).some((r) => r.method === 'POST' && r.path === '/.netlify/identity/logout'),
          'POST /logout sent',
        );
        const cookies = await sp.context.cookies(server.siteUrl);
        assert.equal(cookies.filter((c) => c.name === 'nf_jwt' && c.httpOnly).length, 0, 'the server cleared its nf_jwt cookie');

        await sp.logIn(person);
        let user;
        try {
          user = await sp.waitStoredUser(person.email);
        } catch (e) {
          assert.fail(await withContext(sp, `login through the modal failed: ${e.message}`));
        }
        assert.equal(user.id, userId);
        await sp.waitModalClosed();
        await sp.waitMenuLoggedIn(person.email);
        await assertIssued(sp, userId);
      });

      test('after the admin bans the user, "authenticate" is refused', T, async () => {
        await server.adminUpdate(userId, { app_metadata: { roles: ['banned'] } });
        const revoked = await waitFor(() => standin.revocationsFor(userId).length > 0, { timeoutMs: 10_000 });
        assert.ok(revoked, 'the ban revoked the user’s Ably tokens at the (stand-in) Ably REST API');
        const r = await sp.authenticate();
        assert.equal(r.state, 'refused', `status "${r.text}"`);
        assert.ok(r.response, 'the page asked the token endpoint');
        assert.equal(r.response.status(), 403, r.body);
        const body = JSON.parse(r.body);
        assert.equal(body.error?.code, 40300, r.body);
        assert.equal(body.error?.statusCode, 403, r.body);
        assert.equal(r.text, 'Refused (403): User is banned');
        assert.equal(r.clientId, '');
      });
    });

    describe('password recovery through the widget', () => {
      const person = { name: 'Grace Hopper', email: `grace.${tag}@example.org`, password: 'first compiler 1952', newPassword: 'nanosecond wire 30cm' };
      let sp;
      let userId;

      test('"Forgot password?" sends a recovery mail', T, async () => {
        userId = (await server.createUser(person.email, person.password, { fullName: person.name })).id;
        sp = await openPage();
        await sp.load();
        await sp.page.locator('[data-netlify-identity-menu] .netlify-identity-login').click();
        await sp.waitModalOpen();
        await sp.frame.locator('button.forgotPasswordLink').click();
        await sp.frame.locator('input[name=password]').waitFor({ state: 'detached' });
        const mark = server.mailMark();
        await sp.frame.locator('input[name=email]').fill(person.email);
        await sp.frame.locator('form button[type=submit]').click();
        await sp.frame.getByText("We've sent a recovery email to your account").waitFor();
        const mail = await server.waitMail({ to: person.email, kind: 'recovery', since: mark });
        person.recoveryLink = mail.link;
      });

      test('the recovery link opens the new-password form; the new password is saved', T, async () => {
        await sp.openMailLink(person.recoveryLink);
        try {
          await sp.waitModalOpen();
          await sp.frame.locator('input[name=password]').waitFor();
        } catch (e) {
          assert.fail(await withContext(sp, `no new-password form after the recovery link: ${e.message}`));
        }
        assert.equal(await sp.frame.locator('input[name=email]').count(), 0, 'only a password field');
        const user = await sp.waitStoredUser(person.email);
        assert.equal(user.id, userId, 'the recovery link logged the user in');
        await sp.frame.locator('input[name=password]').fill(person.newPassword);
        const put = sp.page.waitForResponse((r) => new URL(r.url()).pathname === '/.netlify/identity/user' && r.request().method() === 'PUT');
        put.catch(() => {});
        await sp.frame.locator('form button[type=submit]').click();
        const res = await put;
        assert.equal(res.status(), 200, await withContext(sp, `PUT /user with the new password: ${res.status()} ${await res.text()}`));
        assert.deepEqual(Object.keys(res.request().postDataJSON()), ['password'], 'the widget sends {password}');
        const fresh = await server.passwordGrant(person.email, person.newPassword);
        assert.equal(fresh.status, 200, `the new password works\n${describeResponse(fresh)}`);
        const old = await server.passwordGrant(person.email, person.password);
        assert.equal(old.status, 400, `the old password no longer works\n${describeResponse(old)}`);
      });

      test('logs out, then logs in with the new password through the widget', T, async () => {
        await sp.closeModal();
        await sp.waitMenuLoggedIn();
        await sp.logOut();
        await sp.logIn({ email: person.email, password: person.newPassword });
        try {
          assert.equal((await sp.waitStoredUser(person.email)).id, userId);
        } catch (e) {
          assert.fail(await withContext(sp, `login with the new password failed: ${e.message}`));
        }
        await sp.waitModalClosed();
        await sp.waitMenuLoggedIn(person.email);
        await assertIssued(sp, userId);
      });
    });

    describe('invite through the widget', () => {
      const person = { email: `katherine.${tag}@example.org`, password: 'orbital mechanics 1962' };
      let sp;
      let inviteLink;

      test('the admin invites; the invite mail arrives', T, async () => {
        const mark = server.mailMark();
        const r = await server.invite(person.email);
        assert.equal(r.status, 200, describeResponse(r));
        person.id = r.json.id;
        const mail = await server.waitMail({ to: person.email, kind: 'invite', since: mark });
        inviteLink = mail.link;
        assert.equal(mail.base, `${server.siteUrl}/`, `the link points at the site page: ${mail.link}`);
      });

      test('the invite link opens the set-password form; submitting it logs the user in', T, async () => {
        sp = await openPage();
        const from = sp.requests.length;
        await sp.openMailLink(inviteLink);
        try {
          await sp.waitModalOpen();
          await sp.frame.locator('input[name=password]').waitFor();
        } catch (e) {
          assert.fail(await withContext(sp, `no set-password form after the invite link: ${e.message}`));
        }
        assert.deepEqual(
          sp.identityRequests(from).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`),
          [],
          'nothing is verified before the password is chosen (spec §2.3)',
        );
        await sp.frame.locator('input[name=password]').fill(person.password);
        await sp.frame.locator('form button[type=submit]').click();
        let user;
        try {
          user = await sp.waitStoredUser(person.email);
        } catch (e) {
          assert.fail(await withContext(sp, `no gotrue.user after accepting the invite: ${e.message}`));
        }
        if (person.id) assert.equal(user.id, person.id);
        person.id = user.id;
        assert.ok(user.confirmed_at, 'accepting the invite confirms the address');
        const verify = sp.identityRequests(from).find((r) => r.method === 'POST' && r.path === '/.netlify/identity/verify');
        assert.ok(verify, 'POST /verify sent');
        await sp.waitModalClosed();
        await sp.waitMenuLoggedIn(person.email);
      });

      test('the invited user can authenticate, and log in with the chosen password', T, async () => {
        await assertIssued(sp, person.id);
        const r = await server.passwordGrant(person.email, person.password);
        assert.equal(r.status, 200, describeResponse(r));
      });

      test('email change: the link mailed to the new address changes the email through the widget', T, async () => {
        // The widget has no form to request a change; the site's code does it with the user's token
        // (gotrue-js user.update({email})), here over HTTP with the token the widget saved.
        const newEmail = `k.johnson.${tag}@example.net`;
        const { token } = await sp.storedUser();
        const mark = server.mailMark();
        const put = await rawRequest(`${server.apiUrl}/user`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ email: newEmail }),
        });
        assert.equal(put.status, 200, describeResponse(put));
        const mail = await server.waitMail({ to: newEmail, kind: 'email_change', since: mark });
        assert.equal(mail.base, `${server.siteUrl}/`, `the link points at the site page: ${mail.link}`);
        // The widget restores the session, then PUT /user {email_change_token}. (It also sets the
        // message "Your email address has been updated!", but the new user object fires `login`, on
        // which the seed page closes the modal, and closing clears the message: not asserted.)
        const change = sp.page.waitForResponse(
          (r) => new URL(r.url()).pathname === '/.netlify/identity/user' && r.request().method() === 'PUT',
        );
        change.catch(() => {});
        const from = sp.requests.length;
        await sp.openMailLink(mail.link);
        let res;
        try {
          res = await change;
        } catch (e) {
          assert.fail(await withContext(sp, `the widget sent no PUT /user after the email change link: ${e.message}`));
        }
        assert.deepEqual(res.request().postDataJSON(), { email_change_token: mail.token });
        assert.equal(res.status(), 200, await res.text());
        assert.equal((await res.json()).email, newEmail);
        // Widget-side quirks, not asserted: right after the change the menu still shows the old
        // address (the store keeps the same user object, so the menu does not re-render), and 2.x
        // races its page-load GET /user session check against this PUT, so localStorage may keep the
        // old address until the next session check. 1.9.2 has no session check: it must save the
        // PUT's answer.
        if (v.startsWith('1.')) {
          assert.equal((await sp.waitStoredUser(newEmail, { timeoutMs: 5000 })).id, person.id, 'gotrue.user has the new email');
        } else {
          await sp.waitStoredUser(newEmail, { timeoutMs: 2000 }).catch(() => {});
          // A reload: its GET /user session check must bring localStorage up to date.
          await sp.closeModal();
          await sp.page.reload({ waitUntil: 'load' });
          await sp.page.waitForFunction(() => !!window.netlifyIdentity);
          try {
            assert.equal((await sp.waitStoredUser(newEmail)).id, person.id, 'gotrue.user has the new email');
          } catch (e) {
            const calls = sp.identityRequests(from).map((r) => `${r.method} ${r.path}`);
            assert.fail(`gotrue.user never got the new email (${e.message}); it has ${(await sp.storedUser())?.email}; identity calls: ${calls.join(', ')}`);
          }
        }
        // On the next load the page shows the new address.
        await sp.closeModal();
        await sp.page.reload({ waitUntil: 'load' });
        await sp.page.waitForFunction(() => !!window.netlifyIdentity);
        await sp.waitMenuLoggedIn(newEmail);
        assert.equal((await sp.storedUser())?.email, newEmail);
        const login = await server.passwordGrant(newEmail, person.password);
        assert.equal(login.status, 200, `login with the new email\n${describeResponse(login)}`);
        const oldLogin = await server.passwordGrant(person.email, person.password);
        assert.equal(oldLogin.status, 400, `the old email no longer logs in\n${describeResponse(oldLogin)}`);
      });
    });

    test('the pages had no unexpected errors', () => {
      const onSite = (url) => !!url && url.startsWith(`${server.siteUrl}/`);
      const path = (url) => (url ? new URL(url).pathname : '');
      const expected = (p) =>
        // Chromium's own favicon request (the demo page links none).
        (onSite(p.url) && path(p.url) === '/favicon.ico') ||
        // The token endpoint's 403 for the banned user (asserted above) and Chromium's log line for it.
        (p.kind === 'http' && p.status === 403 && onSite(p.url) && path(p.url) === ENDPOINT) ||
        (p.kind === 'console' && onSite(p.url) && path(p.url) === ENDPOINT && /status of 403/.test(p.text)) ||
        // The page is offline apart from the site (SeedPage.open): ably-js cannot reach Ably's hosts,
        // which the brief does not require; its requests fail and it logs warnings about it.
        (p.kind === 'requestfailed' && !onSite(p.url)) ||
        (p.kind === 'console' && p.url && !onSite(p.url) && /ERR_INTERNET_DISCONNECTED/.test(p.text)) ||
        (p.kind === 'console' && p.text.startsWith('console.warning:') && / Ably: /.test(p.text) && path(p.url) === '/vendor/ably.min.js');
      const unexpected = pages.flatMap((sp) => sp.problems).filter((p) => !expected(p));
      assert.deepEqual(unexpected.map((p) => `${p.text} (${p.url})`), []);
    });
  });
}
