// @netlify/identity's BROWSER code paths (window + location defined), driven in Node against one
// chipflap process. The package talks to `location.origin + '/.netlify/identity'` through
// gotrue-js 1.0.1 (X-Nf-Client: gotrue-js), except for the email-change confirmation, which it
// sends with its own fetch. See ../README.md for the list of calls.
import {
  clearCookies,
  cookieValue,
  cookieWrites,
  location,
  navigations,
  plantCookie,
  setPageUrl,
  storedUser,
} from '../lib/browser-env.mjs'; // must come first: window, location, document.cookie, localStorage
import { calls, callsSince, describeCall, describeCalls, describeError, mark } from '../lib/recorder.mjs';

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import * as identity from '@netlify/identity';
import { User as GoTrueUser } from 'gotrue-js';

import { jwtPayload, rawRequest, startServer } from '../lib/harness.mjs';
import {
  URL_SAFE,
  UUID,
  assertFullUser,
  assertNoSecrets,
  assertTokenResponse,
  assertWrappedHttpError,
  jsonOf,
  makeStep,
  rejection,
} from '../lib/steps.mjs';

const { AuthError, AUTH_EVENTS } = identity;

// gotrue-js warns once about the http:// API URL of the test server.
const warn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('DO NOT USE HTTP IN PRODUCTION')) return;
  warn(...args);
};

let server;
const S = {};
const step = makeStep(() => server, S);
const api = (path) => `${server.apiUrl}${path}`;

/** Every auth event delivered to onAuthChange, in order. */
const events = [];
const eventsSince = (n) => events.slice(n).map((e) => e.event);

/** The gotrue-js User the package is working with (gotrue-js's in-memory singleton). */
const liveSession = () => GoTrueUser.recoverSession();

async function waitForEvent(from, name, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (eventsSince(from).includes(name)) return true;
    await sleep(50);
  }
  return false;
}

async function rawLogin(email, password) {
  return rawRequest(api('/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
  });
}

async function rawRefresh(refreshToken) {
  return rawRequest(api('/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
  });
}

/** Drops the local session without any request (as closing the tab and losing storage would). */
function dropLocalSession() {
  liveSession()?.clearSession();
  clearCookies();
}

/** An HS256 JWT signed with a key chipflap does not know. */
function forgedJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', 'not-the-server-secret-0123456789abcdef').update(head).digest('base64url')}`;
}

const ann = { email: 'ann@example.com', password: 'ann pass+word 1&', name: 'Ann Example' };
const ben = { email: 'ben@example.com', password: 'ben password 1' };
const cat = { email: 'cat@example.com', password: 'cat password 1', newPassword: 'cat new password 2' };
const dan = { email: 'dan@example.com', password: 'dan password 1', newPassword: 'dan new password 2' };
const eve = { email: 'eve@example.com', password: 'eve password 1' };
const fay = {
  email: 'fay@example.com',
  password: 'fay password 1',
  newEmail: 'fay.new@example.com',
  newerEmail: 'fay.newer@example.com',
};

describe('@netlify/identity (browser code paths) against chipflap', () => {
  before(
    async () => {
      server = await startServer();
      setPageUrl(`${server.siteUrl}/`);
      identity.onAuthChange((event, user) => events.push({ event, user }));
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    if (server) await server.stop();
  });

  describe('configuration and settings', () => {
    step('getIdentityConfig() is the page origin + /.netlify/identity (no request)', [], async () => {
      const m = mark();
      assert.deepEqual(identity.getIdentityConfig(), { url: server.apiUrl });
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });

    step('getSettings(): GET /settings → {autoconfirm, disableSignup, providers}', [], async () => {
      const m = mark();
      const s = await identity.getSettings();
      const call = callsSince(m, { method: 'GET', path: '/settings' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.url, api('/settings'), 'URL = location.origin + /.netlify/identity/settings');
      assert.equal(call.reqHeaders['x-nf-client'], 'gotrue-js');
      assert.deepEqual(s, {
        autoconfirm: false,
        disableSignup: false,
        providers: { google: false, github: false, gitlab: false, bitbucket: false, facebook: false, email: true },
      }, describeCall(call));
    });

    step('getUser() / isAuthenticated() with no session and no cookie: null, no request', [], async () => {
      const m = mark();
      assert.equal(await identity.getUser(), null);
      assert.equal(await identity.isAuthenticated(), false);
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });
  });

  describe('signup and email confirmation', () => {
    step('signup(email, password, data): POST /signup → an unconfirmed User; a confirmation mail', [], async () => {
      const since = server.mailMark();
      const e = events.length;
      const m = mark();
      const u = await identity.signup(ann.email, ann.password, { full_name: ann.name });
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assert.equal(call?.status, 200, `POST /signup answers 200 (not 201); ${describeCall(call)}`);
      assert.equal(call.reqHeaders['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(call.reqBody), { email: ann.email, password: ann.password, data: { full_name: ann.name } });
      assertNoSecrets(jsonOf(call, describeCall), 'signup response');
      assert.match(String(u.id), UUID, `id; ${describeCall(call)}`);
      assert.equal(u.email, ann.email);
      assert.equal(u.confirmedAt, undefined, 'not confirmed yet');
      assert.equal(typeof u.confirmationSentAt, 'string', `confirmationSentAt (confirmation_sent_at); ${describeCall(call)}`);
      assert.equal(u.name, ann.name, 'name from user_metadata.full_name');
      assert.equal(u.provider, 'email');
      assert.deepEqual(eventsSince(e), [], 'no login event for an unconfirmed signup');
      assert.equal(cookieValue('nf_jwt'), null, 'no cookie for an unconfirmed signup');
      S.annId = u.id;

      const mail = await server.waitMail({ to: ann.email, kind: 'confirmation', since });
      assert.equal(mail.base, `${server.siteUrl}/`, `the link points at the site (GOTRUE_SITE_URL + "/"); link=${mail.link}`);
      assert.match(mail.token, URL_SAFE);
      S.annConfirm = mail.token;
    });

    step('signup() with a password under 8 characters: 422 with {code, msg} (DESIGN §4.8)', [], async () => {
      const m = mark();
      const err = await rejection(identity.signup('shorty@example.com', 'seven77'), 'short password');
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assertWrappedHttpError(err, { status: 422, AuthError }, `short password; ${describeCall(call)}`);
      assert.equal(err.cause.json.code, 422, describeCall(call));
      assert.equal(typeof err.cause.json.msg, 'string', describeCall(call));
      assert.equal(err.message, err.cause.json.msg, 'the AuthError message is the server msg');
    });

    step('signup() of an address that already has an account answers like a fresh signup (DESIGN §4.4)', ['annId'], async () => {
      const m = mark();
      const u = await identity.signup(ann.email, 'another password 9', { full_name: 'Intruder' });
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(u.email, ann.email, describeCall(call));
      assert.equal(u.confirmedAt, undefined, describeCall(call));
      // The answer looks fresh (it echoes the submitted data); that the stored account kept its own
      // metadata (DESIGN §4.5) is checked at confirmation below (name is still ann.name).
    });

    step('login() before confirmation: 400 invalid_grant "Email not confirmed"', ['annId'], async () => {
      const m = mark();
      const err = await rejection(identity.login(ann.email, ann.password), 'login before confirm');
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assertWrappedHttpError(err, { status: 400, message: 'invalid_grant: Email not confirmed', AuthError }, describeCall(call));
      assert.deepEqual(err.cause.json, { error: 'invalid_grant', error_description: 'Email not confirmed' }, describeCall(call));
      assert.equal(storedUser(), null, 'nothing stored');
      assert.equal(cookieValue('nf_jwt'), null, 'no cookie');
    });

    step('handleAuthCallback() on #confirmation_token=: POST /verify {type:"signup"} → GET /user; logged in', ['annConfirm'], async () => {
      setPageUrl(`${server.siteUrl}/#confirmation_token=${S.annConfirm}`);
      const e = events.length;
      const m = mark();
      const result = await identity.handleAuthCallback();
      const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
      assert.equal(verify?.status, 200, describeCall(verify));
      assert.deepEqual(JSON.parse(verify.reqBody), { token: S.annConfirm, type: 'signup' });
      const tok = jsonOf(verify, describeCall);
      assertTokenResponse(tok, 'POST /verify');
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assert.equal(me.reqHeaders.authorization, `Bearer ${tok.access_token}`);
      assertNoSecrets(jsonOf(me, describeCall), 'GET /user response');

      assert.equal(result?.type, 'confirmation', JSON.stringify(result));
      assertFullUser(result.user, { id: S.annId, email: ann.email }, 'confirmation user');
      assert.equal(typeof result.user.confirmedAt, 'string', 'confirmedAt');
      assert.equal(result.user.name, ann.name);
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      assert.equal(location.hash, '', 'hash cleared');
      assert.equal(cookieValue('nf_jwt'), tok.access_token, 'nf_jwt cookie = access token');
      assert.equal(cookieValue('nf_refresh'), tok.refresh_token, 'nf_refresh cookie = refresh token');
      const stored = storedUser();
      assert.equal(stored?.id, S.annId, 'gotrue.user saved');
      assertNoSecrets(stored, 'localStorage gotrue.user');
      S.annConfirmed = true;
    });

    step('confirmEmail() with a used token: 404 "User not found" (tokens are single-use)', ['annConfirmed'], async () => {
      const m = mark();
      const err = await rejection(identity.confirmEmail(S.annConfirm), 'second confirm');
      assertWrappedHttpError(err, { status: 404, message: 'User not found', AuthError }, describeCalls(m));
    });

    step('getUser() / isAuthenticated() with a live session: the user, no request', ['annConfirmed'], async () => {
      const m = mark();
      const u = await identity.getUser();
      assertFullUser(u, { id: S.annId, email: ann.email }, 'getUser()');
      assert.equal(await identity.isAuthenticated(), true);
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });

    step('updateUser({data}): PUT /user merges user_metadata; null deletes a key', ['annConfirmed'], async () => {
      const e = events.length;
      let m = mark();
      let u = await identity.updateUser({ data: { color: 'blue', age: 7 } });
      let put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.deepEqual(JSON.parse(put.reqBody), { data: { color: 'blue', age: 7 } });
      assert.match(String(put.reqHeaders.authorization), /^Bearer /);
      assertNoSecrets(jsonOf(put, describeCall), 'PUT /user response');
      assert.deepEqual(u.userMetadata, { full_name: ann.name, color: 'blue', age: 7 }, describeCall(put));
      m = mark();
      u = await identity.updateUser({ data: { age: null } });
      put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.deepEqual(u.userMetadata, { full_name: ann.name, color: 'blue' }, describeCall(put));
      assert.deepEqual(storedUser()?.user_metadata, { full_name: ann.name, color: 'blue' }, 'stored copy re-saved');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.USER_UPDATED, AUTH_EVENTS.USER_UPDATED]);
    });
  });

  describe('token refresh', () => {
    step('refreshSession(): no request while fresh; near expiry POST /token grant_type=refresh_token (rotated)', ['annConfirmed'], async () => {
      let m = mark();
      assert.equal(await identity.refreshSession(), null, 'nothing to do with a fresh token');
      assert.equal(callsSince(m).length, 0, describeCalls(m));

      const session = liveSession();
      const oldRefresh = session.token.refresh_token;
      session.token.expires_at = Date.now() + 30_000; // inside the 60 s margin
      const e = events.length;
      m = mark();
      const jwt = await identity.refreshSession();
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqHeaders['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(call.reqBody, `grant_type=refresh_token&refresh_token=${oldRefresh}`);
      assert.equal(call.reqHeaders.authorization, undefined, 'no Authorization on a refresh');
      const tok = jsonOf(call, describeCall);
      assertTokenResponse(tok, 'POST /token (refresh)');
      assert.equal(jwt, tok.access_token, 'refreshSession() returns the new access token');
      assert.notEqual(tok.refresh_token, oldRefresh, 'refresh token rotated');
      assert.equal(cookieValue('nf_jwt'), tok.access_token, 'nf_jwt cookie updated');
      assert.equal(cookieValue('nf_refresh'), tok.refresh_token, 'nf_refresh cookie updated');
      assert.equal(storedUser()?.token?.refresh_token, tok.refresh_token, 'stored session updated');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.TOKEN_REFRESH]);
      assert.equal(jwtPayload(tok.access_token).sub, S.annId);
    });

    step('the background timer refreshes 60 s before expiry (TOKEN_REFRESH event)', ['annConfirmed'], async () => {
      const session = liveSession();
      const oldRefresh = session.token.refresh_token;
      session.token.expires_at = Date.now() + 61_500; // timer due in about 1-2 s
      const e = events.length;
      const m = mark();
      await identity.getUser(); // restarts the timer from the current expiry
      assert.ok(await waitForEvent(e, AUTH_EVENTS.TOKEN_REFRESH, 10_000), `TOKEN_REFRESH within 10 s; requests:\n${describeCalls(m)}`);
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqBody, `grant_type=refresh_token&refresh_token=${oldRefresh}`);
      assert.equal(cookieValue('nf_refresh'), liveSession()?.token?.refresh_token);
    });
  });

  describe('logout and login', () => {
    step('logout(): POST /logout → 204 without a content type; session, storage and cookies cleared', ['annConfirmed'], async () => {
      const refreshToken = liveSession().token.refresh_token;
      const e = events.length;
      const m = mark();
      await identity.logout();
      const call = callsSince(m, { method: 'POST', path: '/logout' })[0];
      assert.ok(call, `POST /logout sent; requests:\n${describeCalls(m)}`);
      assert.match(String(call.reqHeaders.authorization), /^Bearer /, 'logout carries the bearer');
      assert.equal(call.reqBody, null, 'no body');
      assert.equal(call.reqHeaders['content-type'], undefined, 'no Content-Type without a body');
      assert.equal(call.status, 204, describeCall(call));
      assert.equal(call.resHeaders['content-type'], undefined, `a 204 must not carry a content type; ${describeCall(call)}`);
      assert.equal(call.resBody, '', 'empty body');
      assert.equal(storedUser(), null, 'gotrue.user removed');
      assert.equal(cookieValue('nf_jwt'), null, 'nf_jwt cleared');
      assert.equal(cookieValue('nf_refresh'), null, 'nf_refresh cleared');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGOUT]);
      assert.equal(await identity.getUser(), null);
      const r = await rawRefresh(refreshToken);
      assert.equal(r.status, 400, `the session's refresh token is dead after logout: ${r.status} ${r.text}`);
      assert.equal(r.json?.error, 'invalid_grant', r.text);
    });

    step('login(email, password): POST /token (form, password grant) → GET /user; cookies and storage set', ['annConfirmed'], async () => {
      const e = events.length;
      const m = mark();
      const u = await identity.login(ann.email, ann.password);
      const tokCall = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(tokCall?.status, 200, describeCall(tokCall));
      assert.equal(tokCall.reqHeaders['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(
        tokCall.reqBody,
        `grant_type=password&username=${encodeURIComponent(ann.email)}&password=${encodeURIComponent(ann.password)}`,
      );
      const tok = jsonOf(tokCall, describeCall);
      assertTokenResponse(tok, 'POST /token (password)');
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assertFullUser(u, { id: S.annId, email: ann.email }, 'login user');
      assert.deepEqual(u.userMetadata, { full_name: ann.name, color: 'blue' });
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      assert.equal(cookieValue('nf_jwt'), tok.access_token);
      assert.equal(cookieValue('nf_refresh'), tok.refresh_token);
      assert.equal(storedUser()?.id, S.annId);
      S.annLoggedIn = true;
    });

    step('login() with a wrong password or an unknown email: 400 invalid_grant, same message', ['annConfirmed'], async () => {
      const expected = 'invalid_grant: No user found with that email, or password invalid.';
      let m = mark();
      let err = await rejection(identity.login(ann.email, 'wrong password 1'), 'wrong password');
      assertWrappedHttpError(err, { status: 400, message: expected, AuthError }, describeCalls(m));
      m = mark();
      err = await rejection(identity.login('nobody@example.com', 'whatever pass 1'), 'unknown email');
      assertWrappedHttpError(err, { status: 400, message: expected, AuthError }, describeCalls(m));
    });

    step('confirmEmail(token): POST /verify {type:"signup"} → GET /user; logged in', [], async () => {
      const since = server.mailMark();
      await identity.signup(ben.email, ben.password);
      const { token } = await server.waitMail({ to: ben.email, kind: 'confirmation', since });
      const e = events.length;
      const m = mark();
      const u = await identity.confirmEmail(token);
      const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
      assert.equal(verify?.status, 200, describeCall(verify));
      assert.deepEqual(JSON.parse(verify.reqBody), { token, type: 'signup' });
      assertTokenResponse(jsonOf(verify, describeCall), 'POST /verify');
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assertFullUser(u, { email: ben.email }, 'confirmEmail user');
      assert.equal(typeof u.confirmedAt, 'string');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      assert.equal(storedUser()?.email, ben.email, 'session saved');
    });
  });

  describe('sessions handed over in cookies or in the URL', () => {
    step('hydrateSession() from server-set nf_jwt / nf_refresh cookies: GET /user; the refresh token works', ['annConfirmed'], async () => {
      await identity.logout(); // ben's session from the step before
      const login = await rawLogin(ann.email, ann.password); // what a server-side login() leaves in the cookies
      assert.equal(login.status, 200, login.text);
      plantCookie('nf_jwt', login.json.access_token);
      plantCookie('nf_refresh', login.json.refresh_token);
      const e = events.length;
      let m = mark();
      const u = await identity.hydrateSession();
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assert.equal(me.reqHeaders.authorization, `Bearer ${login.json.access_token}`);
      assertFullUser(u, { id: S.annId, email: ann.email }, 'hydrated user');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      assert.equal(storedUser()?.token?.refresh_token, login.json.refresh_token, 'session saved with the cookie refresh token');

      liveSession().token.expires_at = Date.now() + 10_000;
      m = mark();
      const jwt = await identity.refreshSession();
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqBody, `grant_type=refresh_token&refresh_token=${login.json.refresh_token}`);
      assert.equal(jwt, jsonOf(call, describeCall).access_token);
    });

    step('getUser() with no session but an nf_jwt cookie hydrates it (GET /user)', ['annConfirmed'], async () => {
      const login = await rawLogin(ann.email, ann.password);
      assert.equal(login.status, 200, login.text);
      dropLocalSession();
      plantCookie('nf_jwt', login.json.access_token);
      plantCookie('nf_refresh', login.json.refresh_token);
      const m = mark();
      const u = await identity.getUser();
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assertFullUser(u, { id: S.annId, email: ann.email }, 'getUser() hydrated');
    });

    step('hydrateSession() with an nf_jwt chipflap did not sign: GET /user → 401; cookies dropped; null', ['annConfirmed'], async () => {
      dropLocalSession();
      const bad = forgedJwt({ sub: S.annId, email: ann.email, exp: Math.floor(Date.now() / 1000) + 3600, app_metadata: {}, user_metadata: {} });
      plantCookie('nf_jwt', bad);
      const m = mark();
      const u = await identity.hydrateSession();
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 401, describeCall(me));
      assert.equal(jsonOf(me, describeCall).code, 401, describeCall(me));
      assert.equal(u, null);
      assert.equal(cookieValue('nf_jwt'), null, 'the package dropped the cookie');
    });

    step('handleAuthCallback() on #access_token=…&refresh_token=… (an OAuth return): GET /user with that token', ['annConfirmed'], async () => {
      // chipflap has no /authorize or /callback, so nothing of its own produces this hash; the tokens
      // here come from a password login. What is tested is the request the package then makes.
      dropLocalSession();
      const login = await rawLogin(ann.email, ann.password);
      assert.equal(login.status, 200, login.text);
      const { access_token: at, refresh_token: rt } = login.json;
      setPageUrl(`${server.siteUrl}/#access_token=${at}&expires_in=3600&refresh_token=${rt}&token_type=bearer`);
      const e = events.length;
      const m = mark();
      const result = await identity.handleAuthCallback();
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assert.equal(me.reqHeaders.authorization, `Bearer ${at}`);
      assert.equal(result?.type, 'oauth');
      assertFullUser(result.user, { id: S.annId, email: ann.email }, 'oauth callback user');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      assert.equal(location.hash, '');
      assert.equal(cookieValue('nf_jwt'), at);
      assert.equal(cookieValue('nf_refresh'), rt);
    });
  });

  describe('password recovery', () => {
    step('requestPasswordRecovery(email): POST /recover → 200 {}; a recovery mail; unknown email also 200 {}', [], async () => {
      server.addUser({ email: cat.email, password: cat.password });
      const since = server.mailMark();
      let m = mark();
      await identity.requestPasswordRecovery(cat.email);
      let call = callsSince(m, { method: 'POST', path: '/recover' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.deepEqual(JSON.parse(call.reqBody), { email: cat.email });
      assert.match(String(call.resHeaders['content-type']), /application\/json/, describeCall(call));
      assert.deepEqual(jsonOf(call, describeCall), {}, describeCall(call));
      const mail = await server.waitMail({ to: cat.email, kind: 'recovery', since });
      assert.equal(mail.base, `${server.siteUrl}/`, mail.link);
      S.catRecovery = mail.token;

      m = mark();
      await identity.requestPasswordRecovery('nobody@example.com');
      call = callsSince(m, { method: 'POST', path: '/recover' })[0];
      assert.equal(call?.status, 200, `unknown address (DESIGN §4.4); ${describeCall(call)}`);
      assert.deepEqual(jsonOf(call, describeCall), {}, describeCall(call));
    });

    step('handleAuthCallback() on #recovery_token=: POST /verify {type:"recovery"} → GET /user; RECOVERY; then updateUser({password})', ['catRecovery'], async () => {
      dropLocalSession();
      setPageUrl(`${server.siteUrl}/#recovery_token=${S.catRecovery}`);
      const e = events.length;
      let m = mark();
      const result = await identity.handleAuthCallback();
      const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
      assert.equal(verify?.status, 200, describeCall(verify));
      assert.deepEqual(JSON.parse(verify.reqBody), { token: S.catRecovery, type: 'recovery' });
      assertTokenResponse(jsonOf(verify, describeCall), 'POST /verify (recovery)');
      assert.equal(callsSince(m, { method: 'GET', path: '/user' })[0]?.status, 200, describeCalls(m));
      assert.equal(result?.type, 'recovery');
      assertFullUser(result.user, { email: cat.email }, 'recovery user');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.RECOVERY]);

      m = mark();
      await identity.updateUser({ password: cat.newPassword });
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.deepEqual(JSON.parse(put.reqBody), { password: cat.newPassword });

      const ok = await rawLogin(cat.email, cat.newPassword);
      assert.equal(ok.status, 200, `login with the new password: ${ok.status} ${ok.text}`);
      const old = await rawLogin(cat.email, cat.password);
      assert.equal(old.status, 400, `login with the old password: ${old.status} ${old.text}`);
    });

    step('recoverPassword(token, newPassword): POST /verify {type:"recovery"} → GET /user → PUT /user {password}', [], async () => {
      server.addUser({ email: dan.email, password: dan.password });
      const since = server.mailMark();
      await identity.requestPasswordRecovery(dan.email);
      const { token } = await server.waitMail({ to: dan.email, kind: 'recovery', since });
      dropLocalSession();
      const e = events.length;
      const m = mark();
      const u = await identity.recoverPassword(token, dan.newPassword);
      const seq = callsSince(m).map((c) => `${c.method} ${c.path.replace(/^.*\/\.netlify\/identity/, '')} ${c.status}`);
      assert.deepEqual(seq, ['POST /verify 200', 'GET /user 200', 'PUT /user 200'], describeCalls(m));
      assert.deepEqual(JSON.parse(callsSince(m, { method: 'PUT', path: '/user' })[0].reqBody), { password: dan.newPassword });
      assertFullUser(u, { email: dan.email }, 'recoverPassword user');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      const ok = await rawLogin(dan.email, dan.newPassword);
      assert.equal(ok.status, 200, `login with the new password: ${ok.status} ${ok.text}`);
    });
  });

  describe('invites', () => {
    step('handleAuthCallback() on #invite_token= hands back the token (no request); acceptInvite(): POST /verify {token,password,type:"signup"} → GET /user', [], async () => {
      const inv = await rawRequest(api('/invite'), {
        method: 'POST',
        headers: { Authorization: `Bearer ${server.systemToken()}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: eve.email }),
      });
      assert.equal(inv.status, 200, `POST /invite (test setup, not a package call): ${inv.status} ${inv.text}`);
      const { token } = await server.waitMail({ to: eve.email, kind: 'invite', since: new Set() });
      dropLocalSession();
      setPageUrl(`${server.siteUrl}/#invite_token=${token}`);
      let m = mark();
      const result = await identity.handleAuthCallback();
      assert.deepEqual(result, { type: 'invite', user: null, token });
      assert.equal(callsSince(m).length, 0, describeCalls(m));
      assert.equal(location.hash, '');

      const e = events.length;
      m = mark();
      const u = await identity.acceptInvite(token, eve.password);
      const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
      assert.equal(verify?.status, 200, describeCall(verify));
      assert.deepEqual(JSON.parse(verify.reqBody), { token, password: eve.password, type: 'signup' });
      assertTokenResponse(jsonOf(verify, describeCall), 'POST /verify (invite)');
      assert.equal(callsSince(m, { method: 'GET', path: '/user' })[0]?.status, 200, describeCalls(m));
      assertFullUser(u, { email: eve.email }, 'invited user');
      assert.equal(typeof u.confirmedAt, 'string', 'accepting the invite confirms');
      assert.equal(typeof u.invitedAt, 'string', 'invitedAt (invited_at)');
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.LOGIN]);
      const ok = await rawLogin(eve.email, eve.password);
      assert.equal(ok.status, 200, `login with the invite password: ${ok.status} ${ok.text}`);
    });
  });

  describe('email change', () => {
    step('updateUser({email}): PUT /user → pendingEmail; mail to the new address', [], async () => {
      server.addUser({ email: fay.email, password: fay.password });
      dropLocalSession();
      await identity.login(fay.email, fay.password);
      const since = server.mailMark();
      const m = mark();
      const u = await identity.updateUser({ email: fay.newEmail });
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.equal(u.email, fay.email, 'the address does not change yet');
      assert.equal(u.pendingEmail, fay.newEmail, `pendingEmail (new_email); ${describeCall(put)}`);
      assert.equal(typeof u.emailChangeSentAt, 'string', `emailChangeSentAt; ${describeCall(put)}`);
      const mail = await server.waitMail({ to: fay.newEmail, kind: 'email_change', since });
      S.fayChange = mail.token;
    });

    step('handleAuthCallback() on #email_change_token=: PUT /user {email_change_token} (the package\'s own fetch)', ['fayChange'], async () => {
      setPageUrl(`${server.siteUrl}/#email_change_token=${S.fayChange}`);
      const e = events.length;
      const m = mark();
      const result = await identity.handleAuthCallback();
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.deepEqual(JSON.parse(put.reqBody), { email_change_token: S.fayChange });
      assert.equal(put.reqHeaders['content-type'], 'application/json');
      assert.match(String(put.reqHeaders.authorization), /^Bearer /);
      assert.equal(result?.type, 'email_change');
      assert.equal(result.user.email, fay.newEmail, describeCall(put));
      assert.equal(result.user.pendingEmail, undefined, `no pending change left; ${describeCall(put)}`);
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.USER_UPDATED]);
      assert.equal(location.hash, '');
      const ok = await rawLogin(fay.newEmail, fay.password);
      assert.equal(ok.status, 200, `login with the new address: ${ok.status} ${ok.text}`);
      S.fayChanged = true;
    });

    step('verifyEmailChange(token): PUT /user {email_change_token}', ['fayChanged'], async () => {
      const since = server.mailMark();
      await identity.updateUser({ email: fay.newerEmail });
      const { token } = await server.waitMail({ to: fay.newerEmail, kind: 'email_change', since });
      const e = events.length;
      const m = mark();
      const u = await identity.verifyEmailChange(token);
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.deepEqual(JSON.parse(put.reqBody), { email_change_token: token });
      assert.equal(u.email, fay.newerEmail, describeCall(put));
      assert.deepEqual(eventsSince(e), [AUTH_EVENTS.USER_UPDATED]);
    });

    step('verifyEmailChange() with a wrong token: AuthError with the server status and msg', ['fayChanged'], async () => {
      const m = mark();
      const err = await rejection(identity.verifyEmailChange('not-the-token'), 'wrong email change token');
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.ok(err instanceof AuthError, describeError(err));
      assert.ok(put && put.status >= 400 && put.status < 500, describeCall(put));
      assert.equal(err.status, put.status, describeCall(put));
      assert.equal(err.message, jsonOf(put, describeCall).msg, `the message is the server msg; ${describeCall(put)}`);
    });
  });

  describe('calls chipflap does not serve, and calls that make no request', () => {
    step('oauthLogin(provider) navigates to <api>/authorize?provider=… — chipflap has no OAuth (answers 404)', [], async (t) => {
      const m = mark();
      assert.throws(() => identity.oauthLogin('github'), (err) => err instanceof AuthError && err.message === 'Redirecting to OAuth provider');
      assert.equal(navigations.at(-1), `${server.apiUrl}/authorize?provider=github`);
      assert.equal(callsSince(m).length, 0, describeCalls(m));
      const r = await rawRequest(navigations.at(-1));
      t.diagnostic(`GET /authorize?provider=github -> ${r.status} ${r.text.slice(0, 100)}`);
      assert.ok(r.status >= 400 && r.status < 500, `not served: a clean 4xx, not a crash; got ${r.status} ${r.text}`);
    });

    step('admin.* refuse to run in a browser (no request)', [], async () => {
      const m = mark();
      const err = await rejection(identity.admin.listUsers(), 'admin in browser');
      assert.ok(err instanceof AuthError && /server-only/.test(err.message), describeError(err));
      assert.equal(callsSince(m).length, 0);
    });
  });

  describe('wire details over every request above', () => {
    step('gotrue-js requests carry X-Nf-Client: gotrue-js and no Content-Type without a body', [], async () => {
      assert.ok(calls.length > 20, 'requests were recorded');
      // The package's own fetch (email change confirmation) sends no X-Nf-Client.
      const viaGotrue = calls.filter((c) => !(c.method === 'PUT' && /email_change_token/.test(c.reqBody || '')));
      assert.deepEqual(viaGotrue.filter((c) => c.reqHeaders['x-nf-client'] !== 'gotrue-js').map(describeCall), []);
      assert.deepEqual(calls.filter((c) => c.reqBody == null && c.reqHeaders['content-type'] !== undefined).map(describeCall), []);
      assert.ok(calls.every((c) => c.url.startsWith(`${server.apiUrl}/`)), 'every request goes to location.origin + /.netlify/identity');
    });

    step('no response has a JSON content type with an empty body; no 5xx', [], async () => {
      assert.deepEqual(calls.filter((c) => /json/.test(c.resHeaders['content-type'] || '') && (c.resBody ?? '') === '').map(describeCall), []);
      assert.deepEqual(calls.filter((c) => c.status >= 500 || c.status === undefined).map(describeCall), []);
    });

    step('the package writes nf_jwt / nf_refresh as JS cookies (path=/; secure; samesite=lax)', [], async () => {
      const writes = cookieWrites.filter((w) => /^nf_(jwt|refresh)=[^;]+;/.test(w));
      assert.ok(writes.length > 0, 'cookies were written');
      for (const w of writes) assert.match(w, /; path=\/; secure; samesite=lax$/, w);
    });
  });
});
