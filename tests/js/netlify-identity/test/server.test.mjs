// @netlify/identity's SERVER code paths (no `window`: what runs inside a Netlify Function or Edge
// Function), driven in Node against chipflap. The Netlify runtime is emulated by the globals the
// package reads (lib/netlify-env.mjs): netlifyIdentityContext {url, token, user},
// Netlify.context {url, cookies}, process.env.URL. The identity token is what `chipflap token
// system` prints (a sub "0" JWT, like the one Netlify hands functions) unless a step says otherwise.
import { CookieJar, invocation } from '../lib/netlify-env.mjs'; // must come first: fetch recorder
import { calls, callsSince, describeCall, describeCalls, mark } from '../lib/recorder.mjs';

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe } from 'node:test';

import * as identity from '@netlify/identity';

import { OPERATOR_TOKEN, jwtPayload, rawRequest, startServer } from '../lib/harness.mjs';
import {
  URL_SAFE,
  assertDirectHttpError,
  assertFullUser,
  assertNoSecrets,
  assertTokenResponse,
  jsonOf,
  makeStep,
  rejection,
} from '../lib/steps.mjs';

const { AuthError, admin } = identity;

const warn = console.warn;
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('DO NOT USE HTTP IN PRODUCTION')) return;
  warn(...args);
};

assert.equal(typeof globalThis.window, 'undefined', 'the server suite must run without window');

let server; // default configuration
let autoServer; // GOTRUE_MAILER_AUTOCONFIRM=true
let shortServer; // GOTRUE_JWT_EXP=30: every access token is inside the package's 60 s refresh margin
const S = {};
const step = makeStep(() => server, S);
const autoStep = makeStep(() => autoServer, S);
const shortStep = makeStep(() => shortServer, S);

/** One emulated function invocation against the default server, admin token = system token. */
function asFunction({ token = S.systemToken, user, cookies } = {}) {
  return invocation({ siteUrl: server.siteUrl, identity: { url: server.apiUrl, token, ...(user ? { user } : {}) }, cookies });
}

const pathOf = (c) => c.path.replace(/^.*\/\.netlify\/identity/, '');

async function rawLogin(srv, email, password) {
  return rawRequest(`${srv.apiUrl}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
  });
}

function forgedJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', 'not-the-server-secret-0123456789abcdef').update(head).digest('base64url')}`;
}

const COOKIE_OPTS = { httpOnly: false, secure: true, path: '/', sameSite: 'Lax' };

const gus = { email: 'gus@example.com', password: 'gus password 1', newPassword: 'gus new password 2', renamed: 'gus.renamed@example.com' };
const hal = { email: 'hal@example.com', password: 'hal password 1' };
const ivy = { email: 'ivy@example.com', password: 'ivy pass+word 1&' }; // '+', ' ' and '&' exercise form decoding
const jill = { email: 'jill@example.com', password: 'jill password 1', name: 'Jill Example' };
const kim = { email: 'kim@example.com', password: 'kim password 1', newPassword: 'kim new password 2' };
const lee = { email: 'lee@example.com', password: 'lee password 1' };
const max = { email: 'max@example.com', password: 'max password 1' };
const nia = { email: 'nia@example.com', password: 'nia password 1' };
const uno = { email: 'uno@example.com', password: 'uno password 1' };

describe('@netlify/identity (Netlify Functions code paths) against chipflap', () => {
  before(
    async () => {
      server = await startServer();
      S.systemToken = server.systemToken();
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    if (server) await server.stop();
  });

  describe('configuration and settings', () => {
    step('getIdentityConfig() reads netlifyIdentityContext, Netlify.context.url or process.env.URL (no request)', ['systemToken'], async () => {
      const m = mark();
      asFunction();
      assert.deepEqual(identity.getIdentityConfig(), { url: server.apiUrl, token: S.systemToken });
      invocation({ siteUrl: server.siteUrl });
      assert.deepEqual(identity.getIdentityConfig(), { url: server.apiUrl });
      invocation({ envUrl: server.siteUrl });
      assert.deepEqual(identity.getIdentityConfig(), { url: server.apiUrl });
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });

    step('getSettings() on the server: GET /settings (through gotrue-js)', ['systemToken'], async () => {
      asFunction();
      const m = mark();
      const s = await identity.getSettings();
      const call = callsSince(m, { method: 'GET', path: '/settings' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.url, `${server.apiUrl}/settings`);
      assert.deepEqual(s, {
        autoconfirm: false,
        disableSignup: false,
        providers: { google: false, github: false, gitlab: false, bitbucket: false, facebook: false, email: true },
      });
    });
  });

  describe('admin.* with the identity token', () => {
    step('admin.createUser({email, password, data}): POST /admin/users {email, password, confirm:true, role, app_metadata, user_metadata}', ['systemToken'], async () => {
      asFunction();
      const m = mark();
      const u = await admin.createUser({
        email: gus.email,
        password: gus.password,
        data: { role: 'editor', user_metadata: { full_name: 'Gus' }, app_metadata: { roles: ['member'] }, other: 1 },
      });
      const call = callsSince(m, { method: 'POST', path: '/admin/users' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqHeaders.authorization, `Bearer ${S.systemToken}`);
      assert.equal(call.reqHeaders['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(call.reqBody), {
        email: gus.email,
        password: gus.password,
        confirm: true,
        role: 'editor',
        app_metadata: { roles: ['member'] },
        user_metadata: { full_name: 'Gus' },
      });
      assertNoSecrets(jsonOf(call, describeCall), 'POST /admin/users response');
      assertFullUser(u, { email: gus.email }, 'created user');
      assert.equal(typeof u.confirmedAt, 'string', `confirm:true confirms; ${describeCall(call)}`);
      assert.equal(u.role, 'editor', `role; ${describeCall(call)}`);
      assert.equal(u.name, 'Gus');
      S.gus = u;
    });

    step('admin.createUser() of an existing address: 422 "Email address already registered by another user"', ['gus'], async () => {
      asFunction();
      const m = mark();
      const err = await rejection(admin.createUser({ email: gus.email.toUpperCase(), password: 'whatever pass 1' }), 'duplicate');
      assertDirectHttpError(err, { status: 422, message: 'Email address already registered by another user', AuthError }, describeCalls(m));
    });

    step('admin.createUser() with a password under 8 characters: 422 with the server msg', ['systemToken'], async () => {
      asFunction();
      const m = mark();
      const err = await rejection(admin.createUser({ email: 'short@example.com', password: 'seven77' }), 'short password');
      const call = callsSince(m, { method: 'POST', path: '/admin/users' })[0];
      assertDirectHttpError(err, { status: 422, AuthError }, describeCall(call));
      assert.equal(err.message, jsonOf(call, describeCall).msg, describeCall(call));
    });

    step('admin.listUsers(): GET /admin/users (Content-Type: application/json on a GET) → User[]', ['gus'], async () => {
      asFunction();
      await admin.createUser({ email: hal.email, password: hal.password });
      const m = mark();
      const users = await admin.listUsers();
      const call = callsSince(m, { method: 'GET', path: '/admin/users' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.search, '', 'no query without options');
      assert.equal(call.reqHeaders['content-type'], 'application/json', 'the package sends Content-Type on the GET');
      assert.ok(Array.isArray(users), 'an array');
      const emails = users.map((u) => u.email);
      for (const e of [gus.email, hal.email]) assert.ok(emails.includes(e), `${e} listed; got ${emails}`);
      for (const u of users) assertFullUser(u, {}, `listed ${u.email}`);
      const body = jsonOf(call, describeCall);
      for (const u of body.users) assertNoSecrets(u, `listed ${u.email}`);
      assert.equal(typeof body.aud, 'string', describeCall(call));
    });

    step('admin.listUsers({page, perPage}): GET /admin/users?page=&per_page=', ['gus'], async () => {
      asFunction();
      const m = mark();
      const p1 = await admin.listUsers({ page: 1, perPage: 1 });
      const p2 = await admin.listUsers({ page: 2, perPage: 1 });
      const [c1, c2] = callsSince(m, { method: 'GET', path: '/admin/users' });
      assert.equal(c1.search, '?page=1&per_page=1');
      assert.equal(c2.search, '?page=2&per_page=1');
      assert.equal(c1.status, 200, describeCall(c1));
      assert.equal(c2.status, 200, describeCall(c2));
      assert.equal(p1.length, 1, describeCall(c1));
      assert.equal(p2.length, 1, describeCall(c2));
      assert.notEqual(p1[0].id, p2[0].id, 'pages differ');
      assert.match(String(c1.resHeaders['x-total-count']), /^\d+$/, `X-Total-Count; ${describeCall(c1)}`);
    });

    step('admin.getUser(id): GET /admin/users/<id>; unknown id → 404 "User not found"; a non-UUID is refused locally', ['gus'], async () => {
      asFunction();
      let m = mark();
      const u = await admin.getUser(S.gus.id);
      const call = callsSince(m, { method: 'GET' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(pathOf(call), `/admin/users/${S.gus.id}`);
      assertFullUser(u, { id: S.gus.id, email: gus.email }, 'admin.getUser');
      assertNoSecrets(jsonOf(call, describeCall), 'GET /admin/users/:id response');

      m = mark();
      const err = await rejection(admin.getUser('00000000-0000-4000-8000-000000000001'), 'unknown id');
      assertDirectHttpError(err, { status: 404, message: 'User not found', AuthError }, describeCalls(m));

      m = mark();
      const local = await rejection(admin.getUser('../settings'), 'non-UUID');
      assert.equal(local.message, 'User ID is not a valid UUID');
      assert.equal(callsSince(m).length, 0);
    });

    step('admin.updateUser(id, attrs): PUT /admin/users/<id> with only the typed fields', ['gus'], async () => {
      asFunction();
      const m = mark();
      const u = await admin.updateUser(S.gus.id, {
        role: 'tester',
        confirm: true,
        password: gus.newPassword,
        app_metadata: { roles: ['editor'] },
        user_metadata: { team: 'blue' },
        aud: 'ignored-by-the-package',
      });
      const call = callsSince(m, { method: 'PUT' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(pathOf(call), `/admin/users/${S.gus.id}`);
      assert.deepEqual(JSON.parse(call.reqBody), {
        password: gus.newPassword,
        role: 'tester',
        confirm: true,
        app_metadata: { roles: ['editor'] },
        user_metadata: { team: 'blue' },
      });
      assertNoSecrets(jsonOf(call, describeCall), 'PUT /admin/users/:id response');
      assert.equal(u.role, 'tester', describeCall(call));
      assert.deepEqual(u.roles, ['editor'], describeCall(call));
      assert.equal(u.provider, 'email', `app_metadata merged, provider kept; ${describeCall(call)}`);
      assert.deepEqual(u.userMetadata, { full_name: 'Gus', team: 'blue' }, `user_metadata merged; ${describeCall(call)}`);
      const ok = await rawLogin(server, gus.email, gus.newPassword);
      assert.equal(ok.status, 200, `login with the new password: ${ok.status} ${ok.text}`);
    });

    step('admin.updateUser(id, {email}): changes the address; a taken address → 422 (DESIGN §4.10)', ['gus'], async () => {
      asFunction();
      let m = mark();
      const u = await admin.updateUser(S.gus.id, { email: gus.renamed });
      assert.equal(u.email, gus.renamed, describeCalls(m));
      m = mark();
      const err = await rejection(admin.updateUser(S.gus.id, { email: hal.email }), 'taken address');
      assertDirectHttpError(err, { status: 422, AuthError }, describeCalls(m));
      const back = await admin.updateUser(S.gus.id, { email: gus.email });
      assert.equal(back.email, gus.email);
    });

    step('admin.updateUser(id, {app_metadata:{roles:["banned"]}}) bans: login() → 400 "User is banned"; unban restores login', ['gus'], async () => {
      const jar = asFunction();
      let m = mark();
      const banned = await admin.updateUser(S.gus.id, { app_metadata: { roles: ['banned'] } });
      assert.deepEqual(banned.roles, ['banned'], describeCalls(m));
      m = mark();
      const err = await rejection(identity.login(gus.email, gus.newPassword), 'banned login');
      assertDirectHttpError(err, { status: 400, message: 'User is banned', AuthError }, describeCalls(m));
      assert.equal(jar.ops.length, 0, 'no cookie for a refused login');
      await admin.updateUser(S.gus.id, { app_metadata: { roles: [] } });
      const u = await identity.login(gus.email, gus.newPassword);
      assert.equal(u.id, S.gus.id);
    });

    step('admin.deleteUser(id): DELETE /admin/users/<id> (Content-Type: application/json, no body) → 200; then 404', ['gus'], async () => {
      asFunction();
      const m = mark();
      const res = await admin.deleteUser(S.gus.id);
      assert.equal(res, undefined);
      const call = callsSince(m, { method: 'DELETE' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqBody, null);
      assert.equal(call.reqHeaders['content-type'], 'application/json');
      const err = await rejection(admin.getUser(S.gus.id), 'getUser after delete');
      assertDirectHttpError(err, { status: 404, message: 'User not found', AuthError }, describeCalls(m));
    });

    step('admin.* with GOTRUE_OPERATOR_TOKEN as the identity token works too', [], async () => {
      asFunction({ token: OPERATOR_TOKEN });
      const m = mark();
      const users = await admin.listUsers();
      const call = callsSince(m)[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqHeaders.authorization, `Bearer ${OPERATOR_TOKEN}`);
      assert.ok(users.some((u) => u.email === hal.email), describeCall(call));
    });

    step('admin.* with a plain user\'s access token: 401 "User not allowed"; without a token: refused locally', [], async () => {
      const login = await rawLogin(server, hal.email, hal.password);
      assert.equal(login.status, 200, login.text);
      asFunction({ token: login.json.access_token });
      let m = mark();
      const err = await rejection(admin.listUsers(), 'plain user');
      assertDirectHttpError(err, { status: 401, message: 'User not allowed', AuthError }, describeCalls(m));
      invocation({ identity: { url: server.apiUrl } });
      m = mark();
      const local = await rejection(admin.listUsers(), 'no token');
      assert.match(local.message, /operator token/);
      assert.equal(callsSince(m).length, 0);
    });
  });

  describe('login, getUser and logout on the server', () => {
    step('login(): POST /token (URLSearchParams form) → GET /user; nf_jwt and nf_refresh set through Netlify.context.cookies', ['systemToken'], async () => {
      server.addUser({ email: ivy.email, password: ivy.password });
      const jar = asFunction();
      const m = mark();
      const u = await identity.login(ivy.email, ivy.password);
      const tokCall = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(tokCall?.status, 200, describeCall(tokCall));
      assert.equal(tokCall.reqHeaders['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(tokCall.reqBody, new URLSearchParams({ grant_type: 'password', username: ivy.email, password: ivy.password }).toString());
      assert.match(tokCall.reqBody, /password=ivy\+pass%2Bword\+1%26$/, 'space as "+", "+" as %2B');
      assert.equal(tokCall.reqHeaders['x-nf-client'], undefined, 'the package\'s own fetch sends no X-Nf-Client');
      const tok = jsonOf(tokCall, describeCall);
      assertTokenResponse(tok, 'POST /token (password, server)');
      const me = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(me?.status, 200, describeCall(me));
      assert.equal(me.reqHeaders.authorization, `Bearer ${tok.access_token}`);
      assertFullUser(u, { email: ivy.email }, 'server login');
      assert.deepEqual(jar.lastSet('nf_jwt'), { name: 'nf_jwt', value: tok.access_token, ...COOKIE_OPTS });
      assert.deepEqual(jar.lastSet('nf_refresh'), { name: 'nf_refresh', value: tok.refresh_token, ...COOKIE_OPTS });
      S.ivy = { id: u.id, access: tok.access_token, refresh: tok.refresh_token };
    });

    step('login() errors: wrong password / unknown email / unconfirmed → 400 with error_description as the message', ['systemToken'], async () => {
      server.addUser({ email: uno.email, password: uno.password, confirmed: false });
      const jar = asFunction();
      const generic = 'No user found with that email, or password invalid.';
      let m = mark();
      let err = await rejection(identity.login(ivy.email, 'wrong password 1'), 'wrong password');
      assertDirectHttpError(err, { status: 400, message: generic, AuthError }, describeCalls(m));
      m = mark();
      err = await rejection(identity.login('nobody@example.com', 'whatever pass 1'), 'unknown');
      assertDirectHttpError(err, { status: 400, message: generic, AuthError }, describeCalls(m));
      m = mark();
      err = await rejection(identity.login(uno.email, uno.password), 'unconfirmed');
      assertDirectHttpError(err, { status: 400, message: 'Email not confirmed', AuthError }, describeCalls(m));
      m = mark();
      err = await rejection(identity.login(uno.email, 'wrong password 1'), 'unconfirmed, wrong password');
      assertDirectHttpError(err, { status: 400, message: generic, AuthError }, `the password is checked first (DESIGN §4.4); ${describeCalls(m)}`);
      assert.equal(jar.ops.length, 0, 'no cookies');
    });

    step('getUser() with the nf_jwt cookie (no identity token): GET /user → the full User', ['ivy'], async () => {
      const variants = [
        ['netlifyIdentityContext.url', { identity: { url: server.apiUrl } }],
        ['Netlify.context.url', { siteUrl: server.siteUrl }],
        ['process.env.URL', { envUrl: server.siteUrl }],
      ];
      for (const [label, opts] of variants) {
        invocation({ ...opts, cookies: new CookieJar({ nf_jwt: S.ivy.access }) });
        const m = mark();
        const u = await identity.getUser();
        const call = callsSince(m, { method: 'GET', path: '/user' })[0];
        assert.equal(call?.url, `${server.apiUrl}/user`, `${label}: URL`);
        assert.equal(call.status, 200, `${label}: ${describeCall(call)}`);
        assert.equal(call.reqHeaders.authorization, `Bearer ${S.ivy.access}`);
        assertFullUser(u, { id: S.ivy.id, email: ivy.email }, `getUser() via ${label}`);
        assert.equal(await identity.isAuthenticated(), true);
      }
    });

    step('getUser() with netlifyIdentityContext.token = the caller\'s access token: GET /user → the full User', ['ivy'], async () => {
      asFunction({ token: S.ivy.access });
      const m = mark();
      const u = await identity.getUser();
      const call = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assertFullUser(u, { id: S.ivy.id, email: ivy.email }, 'getUser()');
    });

    step('getUser() as on Netlify (identity token = system token, user = caller claims): GET /user → 400 "Could not read User ID claim"; claims used', ['ivy'], async () => {
      const claims = jwtPayload(S.ivy.access);
      asFunction({ user: claims });
      const m = mark();
      const u = await identity.getUser();
      const call = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(call?.reqHeaders.authorization, `Bearer ${S.systemToken}`);
      assert.equal(call.status, 400, `spec gotrue-api.md §1.8: sub "0" is not a user id; ${describeCall(call)}`);
      assert.deepEqual(jsonOf(call, describeCall), { code: 400, msg: 'Could not read User ID claim' }, describeCall(call));
      assert.equal(u?.id, S.ivy.id, 'the package falls back to the claims');
      assert.equal(u.email, ivy.email);
      assert.equal(u.createdAt, undefined, 'claims only');
    });

    step('getUser() with an nf_jwt chipflap did not sign: GET /user → 401; null', ['ivy'], async () => {
      const bad = forgedJwt({ sub: S.ivy.id, email: ivy.email, exp: Math.floor(Date.now() / 1000) + 3600 });
      invocation({ identity: { url: server.apiUrl }, cookies: new CookieJar({ nf_jwt: bad }) });
      const m = mark();
      assert.equal(await identity.getUser(), null);
      const call = callsSince(m, { method: 'GET', path: '/user' })[0];
      assert.equal(call?.status, 401, describeCall(call));
      assert.equal(jsonOf(call, describeCall).code, 401, describeCall(call));
    });

    step('logout(): POST /logout with the nf_jwt cookie → 204; both cookies deleted; the session is over', ['ivy'], async () => {
      const jar = asFunction({ cookies: new CookieJar({ nf_jwt: S.ivy.access, nf_refresh: S.ivy.refresh }) });
      let m = mark();
      await identity.logout();
      const call = callsSince(m, { method: 'POST', path: '/logout' })[0];
      assert.equal(call?.status, 204, describeCall(call));
      assert.equal(call.reqHeaders.authorization, `Bearer ${S.ivy.access}`);
      assert.equal(call.reqBody, null);
      assert.equal(call.resHeaders['content-type'], undefined, `204 without a content type; ${describeCall(call)}`);
      assert.deepEqual(jar.ops, [{ op: 'delete', name: 'nf_jwt' }, { op: 'delete', name: 'nf_refresh' }]);
      const r = await rawRequest(`${server.apiUrl}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `grant_type=refresh_token&refresh_token=${S.ivy.refresh}`,
      });
      assert.equal(r.status, 400, `refresh after logout: ${r.status} ${r.text}`);

      const empty = asFunction({ cookies: new CookieJar() });
      m = mark();
      await identity.logout();
      assert.equal(callsSince(m).length, 0, 'no cookie, no request');
      assert.deepEqual(empty.ops.map((o) => o.op), ['delete', 'delete']);
    });
  });

  describe('signup on the server', () => {
    step('signup(): POST /signup (JSON) → an unconfirmed User; no cookies; a confirmation mail', ['systemToken'], async () => {
      const jar = asFunction();
      const since = server.mailMark();
      const m = mark();
      const u = await identity.signup(jill.email, jill.password, { full_name: jill.name });
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.reqHeaders['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(call.reqBody), { email: jill.email, password: jill.password, data: { full_name: jill.name } });
      assertNoSecrets(jsonOf(call, describeCall), 'signup response');
      assert.equal(u.email, jill.email);
      assert.equal(u.confirmedAt, undefined);
      assert.equal(typeof u.confirmationSentAt, 'string', describeCall(call));
      assert.equal(u.name, jill.name);
      assert.equal(jar.ops.length, 0);
      const mail = await server.waitMail({ to: jill.email, kind: 'confirmation', since });
      assert.match(mail.token, URL_SAFE);
      S.jillConfirm = mail.token;
    });

    step('signup() with a password under 8 characters: 422 with the server msg', [], async () => {
      asFunction();
      const m = mark();
      const err = await rejection(identity.signup('tiny@example.com', 'seven77'), 'short password');
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assertDirectHttpError(err, { status: 422, AuthError }, describeCall(call));
      assert.equal(err.message, jsonOf(call, describeCall).msg, describeCall(call));
    });
  });

  describe('the gotrue-js based functions also run on the server (no window, session in memory)', () => {
    step('confirmEmail(token): POST /verify → GET /user; then updateUser({data}): PUT /user', ['jillConfirm'], async () => {
      asFunction();
      let m = mark();
      const u = await identity.confirmEmail(S.jillConfirm);
      assert.deepEqual(callsSince(m).map((c) => `${c.method} ${pathOf(c)} ${c.status}`), ['POST /verify 200', 'GET /user 200'], describeCalls(m));
      assertFullUser(u, { email: jill.email }, 'confirmEmail (server)');
      assert.equal(typeof u.confirmedAt, 'string');
      m = mark();
      const v = await identity.updateUser({ data: { plan: 'pro' } });
      const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
      assert.equal(put?.status, 200, describeCall(put));
      assert.deepEqual(v.userMetadata, { full_name: jill.name, plan: 'pro' }, describeCall(put));
    });

    step('requestPasswordRecovery(email): POST /recover → 200 {}; recoverPassword(token, pw): POST /verify → GET /user → PUT /user', [], async () => {
      asFunction();
      server.addUser({ email: kim.email, password: kim.password });
      const since = server.mailMark();
      let m = mark();
      await identity.requestPasswordRecovery(kim.email);
      const rec = callsSince(m, { method: 'POST', path: '/recover' })[0];
      assert.equal(rec?.status, 200, describeCall(rec));
      assert.deepEqual(jsonOf(rec, describeCall), {});
      const { token } = await server.waitMail({ to: kim.email, kind: 'recovery', since });
      m = mark();
      const u = await identity.recoverPassword(token, kim.newPassword);
      assert.deepEqual(
        callsSince(m).map((c) => `${c.method} ${pathOf(c)} ${c.status}`),
        ['POST /verify 200', 'GET /user 200', 'PUT /user 200'],
        describeCalls(m),
      );
      assertFullUser(u, { email: kim.email }, 'recoverPassword (server)');
      const jar = asFunction();
      const again = await identity.login(kim.email, kim.newPassword);
      assert.equal(again.email, kim.email);
      assert.ok(jar.get('nf_jwt'));
    });

    step('acceptInvite(token, password): POST /verify {token, password, type:"signup"} → GET /user', ['systemToken'], async () => {
      asFunction();
      const inv = await rawRequest(`${server.apiUrl}/invite`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${S.systemToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: lee.email }),
      });
      assert.equal(inv.status, 200, `POST /invite (test setup, not a package call): ${inv.status} ${inv.text}`);
      const { token } = await server.waitMail({ to: lee.email, kind: 'invite', since: new Set() });
      const m = mark();
      const u = await identity.acceptInvite(token, lee.password);
      const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
      assert.equal(verify?.status, 200, describeCall(verify));
      assert.deepEqual(JSON.parse(verify.reqBody), { token, password: lee.password, type: 'signup' });
      assertFullUser(u, { email: lee.email }, 'acceptInvite (server)');
      assert.equal(typeof u.confirmedAt, 'string');
    });
  });

  describe('browser-only functions on the server make no request', () => {
    step('handleAuthCallback, hydrateSession, onAuthChange, oauthLogin, verifyEmailChange; verifyRequestOrigin', [], async () => {
      asFunction();
      const m = mark();
      assert.equal(await identity.handleAuthCallback(), null);
      assert.equal(await identity.hydrateSession(), null);
      assert.equal(typeof identity.onAuthChange(() => {}), 'function');
      assert.throws(() => identity.oauthLogin('github'), AuthError);
      await assert.rejects(identity.verifyEmailChange('x'), AuthError);
      identity.verifyRequestOrigin(new Request(`${server.siteUrl}/x`, { headers: { Origin: server.siteUrl } }));
      assert.throws(
        () => identity.verifyRequestOrigin(new Request(`${server.siteUrl}/x`, { headers: { Origin: 'https://evil.example' } })),
        (err) => err instanceof AuthError && err.status === 403,
      );
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });
  });

  describe('refreshSession() on the server', () => {
    before(async () => {
      shortServer = await startServer({ extraEnv: { GOTRUE_JWT_EXP: '30' } });
      shortServer.addUser({ email: max.email, password: max.password });
    }, { timeout: 5 * 60_000 });
    after(async () => {
      if (shortServer) await shortServer.stop();
    });

    step('with a fresh nf_jwt: null, no request', [], async () => {
      const login = await rawLogin(server, hal.email, hal.password);
      asFunction({ cookies: new CookieJar({ nf_jwt: login.json.access_token, nf_refresh: login.json.refresh_token }) });
      const m = mark();
      assert.equal(await identity.refreshSession(), null);
      assert.equal(callsSince(m).length, 0, describeCalls(m));
    });

    shortStep('near expiry (GOTRUE_JWT_EXP=30): POST /token grant_type=refresh_token (URLSearchParams) → new cookies', [], async () => {
      const jar = invocation({ siteUrl: shortServer.siteUrl, identity: { url: shortServer.apiUrl } });
      await identity.login(max.email, max.password);
      const access = jar.get('nf_jwt');
      const refresh = jar.get('nf_refresh');
      assert.ok(jwtPayload(access).exp - Date.now() / 1000 <= 60, 'the token is inside the 60 s margin');
      const m = mark();
      const jwt = await identity.refreshSession();
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(call.url, `${shortServer.apiUrl}/token`);
      assert.equal(call.reqBody, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh }).toString());
      const tok = jsonOf(call, describeCall);
      assertTokenResponse(tok, 'POST /token (refresh, server)');
      assert.equal(jwt, tok.access_token);
      assert.notEqual(tok.refresh_token, refresh, 'rotated');
      assert.deepEqual(jar.lastSet('nf_jwt'), { name: 'nf_jwt', value: tok.access_token, ...COOKIE_OPTS });
      assert.deepEqual(jar.lastSet('nf_refresh'), { name: 'nf_refresh', value: tok.refresh_token, ...COOKIE_OPTS });
      S.maxRefreshed = true;
    });

    shortStep('with a refresh token chipflap does not know: 400 → cookies deleted, null', [], async () => {
      const login = await rawLogin(shortServer, max.email, max.password);
      assert.equal(login.status, 200, login.text);
      const jar = invocation({
        identity: { url: shortServer.apiUrl },
        cookies: new CookieJar({ nf_jwt: login.json.access_token, nf_refresh: 'not-a-real-refresh-token' }),
      });
      const m = mark();
      assert.equal(await identity.refreshSession(), null);
      const call = callsSince(m, { method: 'POST', path: '/token' })[0];
      assert.equal(call?.status, 400, describeCall(call));
      assert.equal(jsonOf(call, describeCall).error, 'invalid_grant', describeCall(call));
      assert.deepEqual(jar.ops, [{ op: 'delete', name: 'nf_jwt' }, { op: 'delete', name: 'nf_refresh' }]);
    });
  });

  describe('signup on a server with GOTRUE_MAILER_AUTOCONFIRM=true', () => {
    before(async () => {
      autoServer = await startServer({ extraEnv: { GOTRUE_MAILER_AUTOCONFIRM: 'true' } });
    }, { timeout: 5 * 60_000 });
    after(async () => {
      if (autoServer) await autoServer.stop();
    });

    autoStep('signup(): POST /signup → a confirmed User (the answer is a user object, so the package sets no cookie); login() works at once', [], async () => {
      const jar = invocation({ identity: { url: autoServer.apiUrl } });
      const m = mark();
      const u = await identity.signup(nia.email, nia.password);
      const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
      assert.equal(call?.status, 200, describeCall(call));
      assert.equal(typeof u.confirmedAt, 'string', describeCall(call));
      assertNoSecrets(jsonOf(call, describeCall), 'signup response');
      assert.equal(jar.ops.length, 0);
      const v = await identity.login(nia.email, nia.password);
      assert.equal(v.id, u.id);
    });
  });

  describe('wire details over every request above', () => {
    step('no 5xx; no JSON content type with an empty body', [], async () => {
      assert.ok(calls.length > 30, 'requests were recorded');
      assert.deepEqual(calls.filter((c) => c.status >= 500 || c.status === undefined).map(describeCall), []);
      assert.deepEqual(calls.filter((c) => /json/.test(c.resHeaders['content-type'] || '') && (c.resBody ?? '') === '').map(describeCall), []);
    });
  });
});

