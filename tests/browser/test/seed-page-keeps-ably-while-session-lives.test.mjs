// Rule: the seed page keeps Ably for as long as the login lasts (issue 8, rule 3), checked with
// the widget the seed article loads (netlify-identity-widget 1.9.2, which never refreshes its
// access token or `nf_jwt`) on chipflap's unchanged demo page, with GOTRUE_JWT_EXP=5:
//
//   1. log in through the widget; 2. "authenticate" works, and ably-js connects (to an in-browser
//   stand-in for Ably's realtime host) with the token from the page's authUrl; 3. past the access
//   token's expiry, ably-js renews through the authUrl when "Ably" asks it to, and "authenticate"
//   still works; 4. log out: the endpoint answers 401, also to a client that kept the old session
//   cookie; 5. log in again, an admin bans the user: 403, and ably-js's renewal is refused too.
//
// Then the same for a user with 8 KB of user_metadata (nf_jwt stays under the cookie limit).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AblyRevocationStandIn, ABLY_KEY, jwtPayload, startServer, waitFor } from '../lib/harness.mjs';
import { launchChromium } from '../lib/browser.mjs';
import { GENERATIONS, SITE_HOST, SeedPage, makeVendorDir, verifyHs256 } from '../lib/widget.mjs';
import { RealtimeStandIn } from '../lib/realtime-standin.mjs';

const ABLY_SECRET = ABLY_KEY.slice(ABLY_KEY.indexOf(':') + 1);
const JWT_EXP_S = 5;
const T = { timeout: 90_000 };
const generation = GENERATIONS.find((g) => g.version === '1.9.2');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const PEOPLE = [
  { label: 'a user with ordinary metadata', email: 'grace@example.org', metadata: { full_name: 'Grace Hopper' } },
  {
    label: 'a user with 8 KB of user_metadata',
    email: 'big@example.org',
    metadata: { full_name: 'Big Metadata', bio: 'b'.repeat(8 * 1024) },
  },
];
const PASSWORD = 'compiler a-0 1952';

describe(`seed page with widget ${generation.version}, GOTRUE_JWT_EXP=${JWT_EXP_S}: Ably for as long as the session lives`, () => {
  let standin;
  let vendor;
  let server;
  let browser;
  const pages = [];

  before(async () => {
    standin = await new AblyRevocationStandIn().listen();
    vendor = makeVendorDir(generation);
    server = await startServer({
      ablyRestUrl: standin.url,
      siteHost: SITE_HOST,
      extraEnv: {
        CHIPFLAP_DEMO_VENDOR_DIR: vendor.dir,
        GOTRUE_JWT_EXP: String(JWT_EXP_S),
        // Short Ably tokens: ably-js has to come back to the authUrl.
        ABLY_TTLSECONDS: '60',
      },
    });
    browser = await launchChromium({ hosts: [SITE_HOST] });
  }, { timeout: 600_000 });

  after(async () => {
    for (const sp of pages) await sp.close();
    await browser?.close().catch(() => {});
    await server?.stop();
    await standin?.close();
    vendor?.remove();
  }, { timeout: 60_000 });

  for (const person of PEOPLE) {
    test(`${person.label}: log in, authenticate, outlive the access token, log out (401), banned (403)`, T, async () => {
      const realtime = new RealtimeStandIn(ABLY_SECRET);
      const sp = await SeedPage.open(browser, server.siteUrl, { webSocket: realtime.handler });
      pages.push(sp);
      const context = async (msg) => `${msg}\n--- server log tail ---\n${server.logTail(1500)}`;
      const created = await server.createUser(person.email, PASSWORD);
      const userId = created.id;
      await server.adminUpdate(userId, { user_metadata: person.metadata });

      // 1. Log in through the widget.
      await sp.load();
      await sp.logIn({ email: person.email, password: PASSWORD });
      await sp.waitStoredUser(person.email);
      await sp.waitModalClosed();
      const cookies = await sp.context.cookies();
      const nfJwt = cookies.find((c) => c.name === 'nf_jwt');
      const sessionCookie = cookies.find((c) => c.name === 'chipflap_session');
      assert.ok(nfJwt, await context(`the browser kept nf_jwt: ${JSON.stringify(cookies.map((c) => [c.name, c.value.length]))}`));
      assert.ok(`nf_jwt=${nfJwt.value}`.length < 4096, `nf_jwt is ${nfJwt.value.length} bytes`);
      assert.equal(jwtPayload(nfJwt.value).sub, userId);
      assert.ok(sessionCookie, 'the session cookie was set with nf_jwt');
      assert.equal(sessionCookie.httpOnly, true);
      assert.equal(sessionCookie.sameSite, 'Strict');
      assert.equal(sessionCookie.path, '/.netlify/functions/ably-jwt');

      // 2. "authenticate" works, and ably-js connects with the token from the authUrl.
      let r = await sp.authenticate();
      assert.equal(r.state, 'issued', await context(`authenticate: ${r.text}`));
      assert.equal(r.clientId, userId);
      const conn = await waitFor(() => realtime.latest(), { timeoutMs: 30_000 });
      assert.ok(conn, 'ably-js opened a realtime connection');
      assert.deepEqual(conn.problems, []);
      assert.equal(conn.tokens[0].claims['x-ably-clientId'], userId);
      await sp.page.waitForFunction(() => /connected/.test(document.getElementById('connection').textContent));

      // 3. Past the access token's expiry. The widget refreshes it (and nf_jwt) only when the page
      // calls user.jwt(), as the button does; ably-js's own renewals never do, so they come with
      // an expired nf_jwt.
      const currentNfJwt = async () => (await sp.context.cookies()).find((c) => c.name === 'nf_jwt');
      const expiresAt = jwtPayload((await currentNfJwt()).value).exp * 1000;
      await sleep(Math.max(0, expiresAt - Date.now()) + 1500);
      assert.ok(jwtPayload((await currentNfJwt()).value).exp * 1000 < Date.now(), 'nf_jwt holds an expired access token');
      // ably-js renews when "Ably" asks: it goes back to the authUrl, with only cookies.
      const before = sp.endpointResponses.length;
      realtime.requestReauth(conn);
      const renewed = await waitFor(() => conn.tokens.length >= 2, { timeoutMs: 30_000 });
      const renewal = sp.endpointResponses.slice(before).find((x) => new URL(x.url).searchParams.has('rnd'));
      assert.ok(renewed, await context(`ably-js renewed its token: endpoint said ${renewal?.status} ${await renewal?.body}`));
      assert.deepEqual(conn.problems, []);
      assert.equal(conn.tokens[1].claims['x-ably-clientId'], userId);
      // (Ably JWTs are backdated 5 s against clock skew.)
      assert.ok((conn.tokens[1].claims.iat + 5) * 1000 >= expiresAt, `the renewed token was issued after the access token expired: iat ${conn.tokens[1].claims.iat}, first iat ${conn.tokens[0].claims.iat}, access exp ${expiresAt / 1000}, renewal ${renewal?.url} ${renewal?.status}`);
      const sent = sp.requests.filter((q) => q.path === '/.netlify/functions/ably-jwt').at(-1);
      assert.ok(!('authorization' in sent.headers), 'no Bearer: the page and ably-js use cookies only');
      // The button still works (the page's own request).
      r = await sp.authenticate();
      assert.equal(r.state, 'issued', await context(`authenticate after expiry: ${r.text}`));
      assert.equal(r.response.status(), 200);

      // 4. Log out through the widget: 401, also for a client that kept the session cookie.
      const kept = (await sp.context.cookies()).find((c) => c.name === 'chipflap_session');
      await sp.logOut();
      const ask = () =>
        sp.page.evaluate(async (id) => {
          const res = await fetch(`/.netlify/functions/ably-jwt?id=${id}`, { credentials: 'same-origin' });
          return { status: res.status, code: res.headers.get('x-ably-errorcode'), body: await res.text() };
        }, userId);
      let refused = await ask();
      assert.equal(refused.status, 401, await context(`after logout: ${JSON.stringify(refused)}`));
      assert.equal(refused.code, '40100');
      await sp.context.addCookies([kept]);
      refused = await ask();
      assert.equal(refused.status, 401, `a kept session cookie after logout: ${JSON.stringify(refused)}`);
      assert.match(refused.body, /session has ended/);

      // 5. Log in again; authenticate; an admin bans the user: 403, for the page and for ably-js.
      await sp.logIn({ email: person.email, password: PASSWORD });
      await sp.waitStoredUser(person.email);
      await sp.waitModalClosed();
      r = await sp.authenticate();
      assert.equal(r.state, 'issued', await context(`authenticate after logging in again: ${r.text}`));
      const again = await waitFor(() => (realtime.latest() !== conn ? realtime.latest() : null), { timeoutMs: 30_000 });
      assert.ok(again, 'ably-js connected again');
      await sleep(JWT_EXP_S * 1000 + 1500);
      await server.adminUpdate(userId, { app_metadata: { roles: ['banned'] } });
      const beforeBan = sp.endpointResponses.length;
      // Ask every connection ably-js still holds (after logging in again the page may hold more
      // than one client): each must go back to the authUrl, and none may get a token.
      const live = realtime.open();
      assert.ok(live.length > 0, 'ably-js holds a connection');
      const tokensBefore = live.map((c) => c.tokens.length);
      live.forEach((c) => realtime.requestReauth(c));
      const banned = await waitFor(
        () => sp.endpointResponses.slice(beforeBan).find((x) => new URL(x.url).searchParams.has('rnd')),
        { timeoutMs: 30_000 },
      );
      assert.equal(banned?.status, 403, `ably-js's renewal for a banned user: ${banned?.status} ${await banned?.body}`);
      assert.deepEqual(live.map((c) => c.tokens.length), tokensBefore, 'no token after the ban');
      r = await sp.authenticate();
      assert.equal(r.state, 'refused');
      assert.equal(r.response.status(), 403);
      assert.match(r.text, /User is banned/);
      await server.adminUpdate(userId, { app_metadata: { roles: [] } });
      for (const c of realtime.connections) assert.deepEqual(c.problems, []);
      // Tokens are real: each verifies with the key secret.
      assert.doesNotThrow(() => verifyHs256(conn.tokens[1].jwt, ABLY_SECRET));
    });
  }
});
