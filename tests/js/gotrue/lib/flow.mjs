// The full gotrue-js flow of spec/clients.md §4a, run against one chipflap process per client
// generation. Each test file imports ./browser-env.mjs first, then its gotrue-js build, then calls
// defineCompatSuite().

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { callsSince, calls, describeCall, describeError, lastCall, mark, storedUser } from './browser-env.mjs';
import { jwtPayload, rawRequest, startServer } from './harness.mjs';

const URL_SAFE = /^[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET_KEYS = [
  'confirmation_token',
  'recovery_token',
  'email_change_token',
  'invite_token',
  'encrypted_password',
  'password',
  'password_hash',
];
const STEP_TIMEOUT = 30_000;

/**
 * @param {object} o
 * @param {string} o.generation  '1.0.1' | '0.9.29'
 * @param {Function} o.GoTrue    the client class
 * @param {Function} o.JSONHTTPError the JSON error class the client rejects with
 */
export function defineCompatSuite({ generation, GoTrue, JSONHTTPError }) {
  const legacy = generation.startsWith('0.');
  let server;
  let gotrue;
  const S = {}; // state carried from step to step

  // Wraps a test body: skips when a prerequisite is missing, and appends the server log lines
  // written during the step (warnings / errors with error_id) to a failure.
  const step = (name, needs, fn) =>
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (!server) return t.skip('server did not start');
      const missing = needs.filter((k) => S[k] === undefined);
      if (missing.length) return t.skip(`prerequisite missing: ${missing.join(', ')} (an earlier step failed)`);
      const logFrom = server.log.length;
      try {
        await fn(t);
      } catch (err) {
        const newLog = server.log.slice(logFrom).trim();
        if (newLog && err && typeof err === 'object') {
          try {
            err.message += `\n--- chipflap output during this step ---\n${newLog.slice(-2000)}`;
          } catch {
            /* read-only message */
          }
        }
        throw err;
      }
    });

  const api = (path) => `${server.apiUrl}${path}`;

  async function rawRefresh(refreshToken) {
    return rawRequest(api('/token'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
    });
  }

  async function rawLogin(email, password) {
    return rawRequest(api('/token'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&username=${encodeURIComponent(email)}&password=${encodeURIComponent(password)}`,
    });
  }

  /** Asserts that `promise` rejects with a JSONHTTPError of the given status, returning the error. */
  async function rejectsJSON(promise, status, what) {
    let err;
    try {
      const value = await promise;
      assert.fail(`${what}: expected a ${status} rejection, but it resolved to ${JSON.stringify(value)?.slice(0, 500)}`);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      err = e;
    }
    assert.ok(err instanceof JSONHTTPError, `${what}: expected JSONHTTPError, got ${describeError(err)}`);
    assert.equal(err.status, status, `${what}: status; ${describeError(err)}`);
    return err;
  }

  function assertNoSecrets(obj, where) {
    const found = [];
    const walk = (o, path) => {
      if (!o || typeof o !== 'object') return;
      for (const [k, v] of Object.entries(o)) {
        if (SECRET_KEYS.includes(k)) found.push(`${path}${k}`);
        if (path === '' && k === 'token') continue; // the token response itself is meant to be stored
        walk(v, `${path}${k}.`);
      }
    };
    walk(obj, '');
    assert.deepEqual(found, [], `${where} must not contain secret fields; found ${found.join(', ')}`);
  }

  function assertTokenResponse(body, where) {
    assert.equal(typeof body, 'object', `${where}: token response is JSON`);
    assert.equal(typeof body.access_token, 'string', `${where}: access_token`);
    assert.equal(body.token_type, 'bearer', `${where}: token_type must be lowercase "bearer"`);
    assert.equal(typeof body.expires_in, 'number', `${where}: expires_in is a number`);
    assert.equal(typeof body.refresh_token, 'string', `${where}: refresh_token`);
    assert.match(body.refresh_token, URL_SAFE, `${where}: refresh_token must be URL-safe (sent un-encoded)`);
    const claims = jwtPayload(body.access_token);
    assert.equal(typeof claims.exp, 'number', `${where}: access token claim exp is numeric seconds`);
    assert.ok(claims.exp > Date.now() / 1000, `${where}: exp in the future`);
    assert.equal(typeof claims.sub, 'string', `${where}: sub`);
    return claims;
  }

  function assertClientToken(user, where) {
    assert.ok(user.token, `${where}: user.token`);
    assert.ok(Number.isFinite(user.token.expires_at), `${where}: client computed expires_at from exp (got ${user.token.expires_at})`);
    const claims = jwtPayload(user.token.access_token);
    assert.equal(user.token.expires_at, claims.exp * 1000, `${where}: expires_at = exp*1000`);
    assert.equal(claims.sub, user.id, `${where}: access token sub = user id`);
    assert.equal(claims.email, user.email, `${where}: access token email claim`);
  }

  const alice = { email: 'alice@example.com', password: 'alice pass 1!', newPassword: 'alice new pass 2&', name: 'Alice Example' };
  const carol = { email: 'carol@example.com', newEmail: 'carol.new@example.com', password: 'carol pass 123' };
  const admin = { email: 'admin@example.com', password: 'admin pass 123' };
  const bob = { email: 'bob@example.com', password: 'bob pass 1234' };
  const dave = { email: 'dave@example.com', password: 'dave pass 1234' };

  /** signup → mail → confirm(token, remember). */
  async function signupAndConfirm(who, remember = true) {
    const since = server.mailMark();
    await gotrue.signup(who.email, who.password);
    const { token } = await server.waitMail({ to: who.email, kind: 'confirmation', since });
    return gotrue.confirm(token, remember);
  }

  describe(`gotrue-js ${generation} against chipflap`, () => {
    before(
      async () => {
        server = await startServer();
        const warn = console.warn;
        console.warn = () => {}; // the clients warn about http:// APIUrls
        try {
          gotrue = new GoTrue({ APIUrl: server.apiUrl });
        } finally {
          console.warn = warn;
        }
      },
      { timeout: 20 * 60_000 },
    );
    after(async () => {
      if (server) await server.stop();
    });

    describe('settings', () => {
      step('GET /settings has the shape the widget reads', [], async () => {
        const s = await gotrue.settings();
        assert.equal(typeof s, 'object', `settings is JSON; ${describeCall(lastCall({ path: '/settings' }))}`);
        assert.equal(typeof s.external, 'object', 'settings.external');
        for (const p of ['bitbucket', 'github', 'gitlab', 'google', 'facebook', 'email', 'saml']) {
          assert.equal(typeof s.external[p], 'boolean', `settings.external.${p} is a boolean; got ${JSON.stringify(s.external)}`);
        }
        assert.equal(s.external.email, true, 'email provider enabled');
        assert.equal(typeof s.external_labels, 'object', 'settings.external_labels is an object');
        assert.equal(s.disable_signup, false, 'disable_signup');
        assert.equal(s.autoconfirm, false, 'autoconfirm');
      });
    });

    describe('signup, confirmation, session, refresh, recovery', () => {
      step('signup returns the user (200) with confirmation_sent_at and mails a confirmation link', [], async () => {
        const since = server.mailMark();
        const m = mark();
        const u = await gotrue.signup(alice.email, alice.password, { full_name: alice.name });
        const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
        assert.equal(call?.status, 200, `POST /signup status must be 200 (not 201); ${describeCall(call)}`);
        assert.match(String(call.resHeaders['content-type']), /application\/json/, 'signup response content-type');
        assert.match(String(u.id), UUID, `signup user id is a UUID; got ${u.id}`);
        assert.equal(u.email, alice.email);
        assert.equal(typeof u.confirmation_sent_at, 'string', `confirmation_sent_at present; got ${JSON.stringify(u)}`);
        assert.ok(!u.confirmed_at, 'not confirmed yet');
        assert.equal(u.user_metadata?.full_name, alice.name, 'data became user_metadata');
        assert.equal(u.app_metadata?.provider, 'email', 'app_metadata.provider');
        assertNoSecrets(u, 'signup response');
        S.aliceId = u.id;

        const mail = await server.waitMail({ to: alice.email, kind: 'confirmation', since });
        assert.equal(mail.base, `${server.siteUrl}/`, `confirmation link base is GOTRUE_SITE_URL + "/"; link=${mail.link}`);
        assert.match(mail.token, URL_SAFE, 'confirmation token is base64url');
        S.confirmToken = mail.token;
      });

      step('login before confirmation rejects with invalid_grant: Email not confirmed', ['aliceId'], async () => {
        const err = await rejectsJSON(gotrue.login(alice.email, alice.password, true), 400, 'login before confirm');
        assert.equal(err.message, 'invalid_grant: Email not confirmed', describeError(err));
        assert.equal(err.json.error, 'invalid_grant', describeError(err));
        assert.equal(err.json.error_description, 'Email not confirmed', describeError(err));
        assert.equal(storedUser(), null, 'nothing stored after a failed login');
        // DESIGN §4.4: the password is checked before "Email not confirmed" is revealed.
        const wrong = await rejectsJSON(gotrue.login(alice.email, 'not the password', true), 400, 'wrong password, unconfirmed');
        assert.equal(wrong.json.error, 'invalid_grant', describeError(wrong));
        assert.notEqual(wrong.json.error_description, 'Email not confirmed', `wrong password must not reveal the unconfirmed state; ${describeError(wrong)}`);
      });

      step('confirm(token, true) logs in and stores gotrue.user without secrets', ['confirmToken'], async () => {
        const m = mark();
        const user = await gotrue.confirm(S.confirmToken, true);
        const verify = callsSince(m, { method: 'POST', path: '/verify' })[0];
        assert.equal(verify?.status, 200, `POST /verify; ${describeCall(verify)}`);
        assert.deepEqual(JSON.parse(verify.reqBody), { token: S.confirmToken, type: 'signup' });
        assertTokenResponse(JSON.parse(verify.resBody), 'POST /verify');
        const getUser = callsSince(m, { method: 'GET', path: '/user' })[0];
        assert.equal(getUser?.status, 200, `GET /user after verify; ${describeCall(getUser)}`);
        assertNoSecrets(JSON.parse(getUser.resBody), 'GET /user response');

        assert.equal(user.id, S.aliceId);
        assert.equal(user.email, alice.email);
        assert.equal(typeof user.confirmed_at, 'string', 'confirmed_at set');
        assert.equal(user.user_metadata?.full_name, alice.name);
        assertClientToken(user, 'after confirm');

        const stored = storedUser();
        assert.ok(stored, 'gotrue.user written to localStorage');
        assert.equal(stored.id, S.aliceId, 'stored id (the seed page reads top-level id)');
        assert.equal(stored.email, alice.email, 'stored email');
        assert.equal(stored.url, server.apiUrl, 'stored url');
        assert.equal(typeof stored.token?.refresh_token, 'string', 'stored token.refresh_token');
        assert.equal(typeof stored.token?.access_token, 'string', 'stored token.access_token');
        assertNoSecrets(stored, 'localStorage gotrue.user');
        assert.equal(gotrue.currentUser()?.id, S.aliceId, 'currentUser() after confirm');
        S.confirmed = true;
      });

      step('a confirmation token is single-use', ['confirmed'], async () => {
        const err = await rejectsJSON(gotrue.confirm(S.confirmToken, true), 404, 'second confirm with the same token');
        assert.equal(err.message, 'User not found', describeError(err));
        assert.equal(storedUser()?.id, S.aliceId, 'the failed confirm leaves the stored session alone');
      });

      step('login(email, password, true) with form encoding (@ and spaces percent-encoded)', ['confirmed'], async () => {
        const m = mark();
        const user = await gotrue.login(alice.email, alice.password, true);
        const tok = callsSince(m, { method: 'POST', path: '/token' })[0];
        assert.equal(tok?.status, 200, `POST /token password grant; ${describeCall(tok)}`);
        assertTokenResponse(JSON.parse(tok.resBody), 'POST /token (password)');
        assert.equal(user.id, S.aliceId);
        assert.equal(user.email, alice.email);
        assertClientToken(user, 'after login');
        assert.equal(storedUser()?.token?.refresh_token, user.token.refresh_token, 'stored the new session');
        assert.equal(gotrue.currentUser(), user, 'currentUser() is the logged-in user');
        S.alice = user;
      });

      step('update({data}) merges user_metadata (null deletes a key)', ['alice'], async () => {
        const user = S.alice;
        await user.update({ data: { color: 'blue', age: 7 } });
        assert.deepEqual(user.user_metadata, { full_name: alice.name, color: 'blue', age: 7 }, 'merged metadata');
        assert.deepEqual(storedUser()?.user_metadata, user.user_metadata, 'stored copy re-saved');
        await user.update({ data: { age: null } });
        assert.deepEqual(user.user_metadata, { full_name: alice.name, color: 'blue' }, 'null removed the key');
        const put = lastCall({ method: 'PUT', path: '/user' });
        assert.equal(put.status, 200, describeCall(put));
        assertNoSecrets(JSON.parse(put.resBody), 'PUT /user response');
      });

      step('jwt(true) forces a refresh that rotates the refresh token', ['alice'], async () => {
        const user = S.alice;
        const before = user.token.refresh_token;
        const m = mark();
        const access = await user.jwt(true);
        const refresh = callsSince(m, { method: 'POST', path: '/token' });
        assert.equal(refresh.length, 1, 'one POST /token');
        assert.match(refresh[0].reqBody, /^grant_type=refresh_token&refresh_token=/);
        assert.equal(refresh[0].status, 200, describeCall(refresh[0]));
        assertTokenResponse(JSON.parse(refresh[0].resBody), 'POST /token (refresh)');
        assert.equal(access, user.token.access_token);
        assert.notEqual(user.token.refresh_token, before, 'refresh token rotated');
        assert.match(user.token.refresh_token, URL_SAFE);
        assertClientToken(user, 'after forced refresh');
        assert.equal(storedUser()?.token?.refresh_token, user.token.refresh_token, 'stored session re-saved with the new token');
      });

      step('an expired token is refreshed implicitly by jwt() and before GET /user', ['alice'], async () => {
        const user = S.alice;
        const before = user.token.refresh_token;
        user.token.expires_at = Date.now();
        let m = mark();
        await user.jwt();
        let refresh = callsSince(m, { method: 'POST', path: '/token' });
        assert.equal(refresh.length, 1, 'jwt() refreshed once (60 s skew)');
        assert.equal(refresh[0].status, 200, describeCall(refresh[0]));
        assert.notEqual(user.token.refresh_token, before, 'rotated again');
        assert.ok(user.token.expires_at - 60_000 > Date.now(), 'new expires_at is more than 60 s away');

        user.token.expires_at = Date.now();
        m = mark();
        await user.getUserData();
        const seq = callsSince(m).map((c) => `${c.method} ${c.path.replace(server.apiUrl.replace(/^https?:\/\/[^/]+/, ''), '')} ${c.status}`);
        assert.deepEqual(seq, ['POST /token 200', 'GET /user 200'], 'refresh happens transparently before the authenticated call');
        assert.equal(user.email, alice.email);
      });

      step('refresh token reuse within the grace window answers with the successor (DESIGN §4.3)', ['confirmed'], async () => {
        const login = await rawLogin(alice.email, alice.password);
        assert.equal(login.status, 200, `raw password login: ${login.status} ${login.text}`);
        const r1 = login.json.refresh_token;
        const second = await rawRefresh(r1);
        assert.equal(second.status, 200, `first refresh: ${second.status} ${second.text}`);
        const r2 = second.json.refresh_token;
        assert.notEqual(r2, r1, 'rotated');
        const reuse = await rawRefresh(r1);
        assert.equal(reuse.status, 200, `reusing the rotated token within 10 s (another tab) must succeed: ${reuse.status} ${reuse.text}`);
        assert.equal(reuse.json.refresh_token, r2, 'the reuse answers with the current successor');
        const next = await rawRefresh(r2);
        assert.equal(next.status, 200, `the successor still works: ${next.status} ${next.text}`);
      });

      step('requestPasswordRecovery → mail → recover(token, true) → update({password})', ['alice'], async () => {
        const otherSessionRefresh = S.alice.token.refresh_token; // the login session, not the recovery one
        const since = server.mailMark();
        const m = mark();
        const res = await gotrue.requestPasswordRecovery(alice.email);
        const rec = callsSince(m, { method: 'POST', path: '/recover' })[0];
        assert.equal(rec?.status, 200, describeCall(rec));
        assert.deepEqual(JSON.parse(rec.resBody), {}, `POST /recover answers {}; ${describeCall(rec)}`);
        assert.deepEqual(res, {}, 'client resolves to {}');

        const mail = await server.waitMail({ to: alice.email, kind: 'recovery', since });
        assert.equal(mail.base, `${server.siteUrl}/`, `recovery link base; link=${mail.link}`);
        assert.match(mail.token, URL_SAFE);

        const m2 = mark();
        const user = await gotrue.recover(mail.token, true);
        const verify = callsSince(m2, { method: 'POST', path: '/verify' })[0];
        assert.deepEqual(JSON.parse(verify.reqBody), { token: mail.token, type: 'recovery' });
        assert.equal(verify.status, 200, describeCall(verify));
        assert.equal(user.id, S.aliceId);
        assert.equal(storedUser()?.id, S.aliceId, 'recovered session stored');
        assertNoSecrets(storedUser(), 'localStorage after recover');

        await user.update({ password: alice.newPassword });
        const put = lastCall({ method: 'PUT', path: '/user' });
        assert.equal(put.status, 200, describeCall(put));
        assertNoSecrets(JSON.parse(put.resBody), 'PUT /user {password} response');
        S.recovered = user;

        // DESIGN §4.7: changing the password ends the user's other sessions, not this one.
        const other = await rawRefresh(otherSessionRefresh);
        assert.equal(other.status, 400, `the other session's refresh token must be dead: ${other.status} ${other.text}`);
        assert.equal(other.json?.error, 'invalid_grant', other.text);
        await user.jwt(true);
        assertClientToken(user, 'the session that changed the password still refreshes');
      });

      step('after the reset the old password is rejected and the new one accepted', ['recovered'], async () => {
        const err = await rejectsJSON(gotrue.login(alice.email, alice.password, true), 400, 'login with old password');
        assert.equal(err.json.error, 'invalid_grant', describeError(err));
        assert.equal(err.message, 'invalid_grant: No user found with that email, or password invalid.', describeError(err));
        const user = await gotrue.login(alice.email, alice.newPassword, true);
        assert.equal(user.id, S.aliceId);
        S.alicePassword = alice.newPassword;
      });

      step('recovery for an unknown address answers 200 {} (DESIGN §4.4)', [], async () => {
        const res = await gotrue.requestPasswordRecovery('nobody-here@example.com');
        assert.deepEqual(res, {}, describeCall(lastCall({ path: '/recover' })));
      });

      step('signup for an existing address answers like a fresh signup (DESIGN §4.4)', ['alicePassword'], async () => {
        const m = mark();
        const u = await gotrue.signup(alice.email, 'a different password', { full_name: 'Mallory' });
        const call = callsSince(m, { method: 'POST', path: '/signup' })[0];
        assert.equal(call?.status, 200, describeCall(call));
        assert.equal(u.email, alice.email);
        assert.equal(typeof u.confirmation_sent_at, 'string', `looks like a fresh signup; got ${JSON.stringify(u)}`);
        assert.ok(!u.confirmed_at, `must not reveal that the account is confirmed; got ${JSON.stringify(u)}`);
        assertNoSecrets(u, 'duplicate signup response');
        const user = await gotrue.login(alice.email, S.alicePassword, true);
        assert.equal(user.user_metadata?.full_name, alice.name, 'metadata not overwritten');
      });
    });

    describe('email change', () => {
      step('update({email}) mails the new address; update({email_change_token}) swaps it', [], async () => {
        const user = await signupAndConfirm(carol);
        assert.equal(user.email, carol.email);

        const since = server.mailMark();
        const m = mark();
        await user.update({ email: carol.newEmail });
        const put = callsSince(m, { method: 'PUT', path: '/user' })[0];
        assert.equal(put?.status, 200, describeCall(put));
        const pending = JSON.parse(put.resBody);
        assert.equal(pending.email, carol.email, 'email unchanged until confirmed');
        assert.equal(pending.new_email, carol.newEmail, `pending change shown as new_email; ${describeCall(put)}`);
        assertNoSecrets(pending, 'PUT /user {email} response');

        const mail = await server.waitMail({ to: carol.newEmail, kind: 'email_change', since });
        assert.equal(mail.base, `${server.siteUrl}/`, `email change link base; link=${mail.link}`);
        assert.match(mail.token, URL_SAFE);
        const toOld = server
          .mails()
          .filter((x) => !since.has(x.name) && (x.headers.to || '').toLowerCase().includes(carol.email))
          .filter((x) => x.bodies.join('\n').includes('email_change_token='));
        assert.equal(toOld.length, 0, 'no email_change link is sent to the old address');

        const m2 = mark();
        await user.update({ email_change_token: mail.token });
        const put2 = callsSince(m2, { method: 'PUT', path: '/user' })[0];
        assert.equal(put2?.status, 200, describeCall(put2));
        const done = JSON.parse(put2.resBody);
        assert.equal(done.email, carol.newEmail, 'email swapped');
        assert.ok(!done.new_email, `no pending change left; ${describeCall(put2)}`);
        assert.equal(user.email, carol.newEmail);
        assert.equal(storedUser()?.email, carol.newEmail, 'stored copy updated');

        const again = await gotrue.login(carol.newEmail, carol.password, true);
        assert.equal(again.id, user.id, 'login with the new address');
        const err = await rejectsJSON(gotrue.login(carol.email, carol.password), 400, 'login with the old address');
        assert.equal(err.json.error, 'invalid_grant', describeError(err));
      });
    });

    describe('admin API through the client', () => {
      step('an admin created with `chipflap users add --admin --confirmed` logs in through the client', [], async () => {
        server.cliOk(['users', 'add', '--email', admin.email, '--password-stdin', '--admin', '--confirmed'], { input: `${admin.password}\n` });
        const user = await gotrue.login(admin.email, admin.password);
        assert.equal(user.email, admin.email);
        assert.equal(user.role, 'admin', `role column is exposed as role; got ${JSON.stringify(user.role)}`);
        S.admin = user;
      });

      step('`chipflap token system` prints a system JWT (sub "0") accepted by /admin/users', [], async () => {
        const out = server.cliOk(['token', 'system']).stdout.trim().split(/\s+/).pop();
        const claims = jwtPayload(out);
        assert.equal(claims.sub, '0', `system token sub; claims=${JSON.stringify(claims)}`);
        const r = await rawRequest(api('/admin/users'), { headers: { Authorization: `Bearer ${out}` } });
        assert.equal(r.status, 200, `GET /admin/users with the system token: ${r.status} ${r.text}`);
        assert.ok(Array.isArray(r.json?.users), r.text);
      });

      step('admin.createUser(email, pw, {confirm:true})', ['admin'], async () => {
        const m = mark();
        const created = await S.admin.admin.createUser(bob.email, bob.password, { confirm: true, user_metadata: { full_name: 'Bob' } });
        const call = callsSince(m, { method: 'POST', path: '/admin/users' })[0];
        assert.equal(call?.status, 200, describeCall(call));
        assert.match(String(created.id), UUID, JSON.stringify(created));
        assert.equal(created.email, bob.email);
        assert.equal(typeof created.confirmed_at, 'string', 'confirm:true confirms');
        assert.equal(created.user_metadata?.full_name, 'Bob');
        assert.equal(typeof created.app_metadata, 'object');
        assertNoSecrets(created, 'admin createUser response');
        S.bob = created;
      });

      step(`listUsers('') resolves to ${legacy ? '{pagination, items:{aud, users}}' : '{aud, users}'}`, ['admin', 'bob'], async () => {
        const m = mark();
        const res = await S.admin.admin.listUsers('');
        const call = callsSince(m, { method: 'GET', path: '/admin/users' })[0];
        assert.equal(call?.status, 200, describeCall(call));
        assert.equal(call.reqHeaders['x-jwt-aud'], undefined, 'no X-JWT-AUD for an empty aud');
        const total = call.resHeaders['x-total-count'];
        assert.match(String(total), /^\d+$/, `X-Total-Count header; headers=${JSON.stringify(call.resHeaders)}`);
        assert.ok(call.resHeaders.link && call.resHeaders.link.trim() !== '', `a non-empty Link header; got ${JSON.stringify(call.resHeaders.link)}`);

        let body;
        if (legacy) {
          assert.ok(res.pagination && res.items, `0.9.x wraps with pagination; got keys ${Object.keys(res)}`);
          assert.equal(res.pagination.total, Number(total), 'pagination.total from X-Total-Count');
          assert.equal(typeof res.pagination.current, 'number');
          body = res.items;
        } else {
          assert.equal(res.pagination, undefined, '1.0.1 ignores Link');
          body = res;
        }
        assert.equal(typeof body.aud, 'string', `aud; got ${JSON.stringify(body).slice(0, 300)}`);
        assert.ok(Array.isArray(body.users), 'users array');
        const emails = body.users.map((u) => u.email);
        for (const e of [bob.email, admin.email, alice.email]) assert.ok(emails.includes(e), `${e} listed; got ${emails}`);
        assert.ok(Number(total) >= body.users.length, 'X-Total-Count counts all users');
        for (const u of body.users) {
          assertNoSecrets(u, `listed user ${u.email}`);
          assert.equal(typeof u.app_metadata, 'object', `app_metadata is an object for ${u.email}`);
          assert.ok(u.app_metadata !== null, `app_metadata not null for ${u.email}`);
        }
      });

      step('getUser({id})', ['admin', 'bob'], async () => {
        const got = await S.admin.admin.getUser({ id: S.bob.id });
        assert.equal(got.id, S.bob.id, `getUser returns the user itself; got ${JSON.stringify(got).slice(0, 300)}`);
        assert.equal(got.email, bob.email);
        assert.ok(got.app_metadata && typeof got.app_metadata === 'object', 'app_metadata is always an object');
        assertNoSecrets(got, 'admin getUser response');
      });

      step('updateUser({app_metadata:{roles:["banned"]}}) bans: login refused with "User is banned"', ['admin', 'bob'], async () => {
        const session = await rawLogin(bob.email, bob.password);
        assert.equal(session.status, 200, `bob can log in before the ban: ${session.status} ${session.text}`);

        const updated = await S.admin.admin.updateUser({ id: S.bob.id }, { app_metadata: { roles: ['banned'] } });
        assert.deepEqual(updated.app_metadata?.roles, ['banned'], JSON.stringify(updated));
        assert.equal(updated.app_metadata?.provider, 'email', 'app_metadata merged, provider kept');

        const err = await rejectsJSON(gotrue.login(bob.email, bob.password), 400, 'banned login');
        assert.equal(err.json.error, 'invalid_grant', describeError(err));
        assert.ok(String(err.json.error_description).includes('User is banned'), describeError(err));
        assert.ok(err.message.includes('User is banned'), describeError(err));

        // DESIGN §5: a ban ends every refresh token and /user answers 403.
        const refresh = await rawRefresh(session.json.refresh_token);
        assert.equal(refresh.status, 400, `refresh after the ban: ${refresh.status} ${refresh.text}`);
        const me = await rawRequest(api('/user'), { headers: { Authorization: `Bearer ${session.json.access_token}` } });
        assert.equal(me.status, 403, `GET /user for a banned user: ${me.status} ${me.text}`);
      });

      step('deleteUser resolves to {}; the user is gone', ['admin', 'bob'], async () => {
        const res = await S.admin.admin.deleteUser({ id: S.bob.id });
        const call = lastCall({ method: 'DELETE' });
        assert.equal(call?.status, 200, describeCall(call));
        assert.deepEqual(res, {}, describeCall(call));
        const err = await rejectsJSON(S.admin.admin.getUser({ id: S.bob.id }), 404, 'getUser after delete');
        assert.equal(err.message, 'User not found', describeError(err));
      });

      step('a plain user calling admin.listUsers is refused: 401 User not allowed', ['alicePassword'], async () => {
        const plain = await gotrue.login(alice.email, S.alicePassword);
        const err = await rejectsJSON(plain.admin.listUsers(''), 401, 'plain user listUsers');
        assert.equal(err.message, 'User not allowed', describeError(err));
        assert.deepEqual(err.json, { code: 401, msg: 'User not allowed' }, describeError(err));
      });
    });

    describe('logout and wire details', () => {
      step('logout(): POST /logout → 204 without content type; storage cleared; currentUser() null', [], async () => {
        const user = await signupAndConfirm(dave, true);
        assert.equal(storedUser()?.id, user.id, 'stored before logout');
        const refreshToken = user.token.refresh_token;
        const m = mark();
        await user.logout();
        const call = callsSince(m, { method: 'POST', path: '/logout' })[0];
        assert.ok(call, 'POST /logout sent');
        assert.match(String(call.reqHeaders.authorization), /^Bearer /, 'logout carries the bearer');
        assert.equal(call.status, 204, describeCall(call));
        assert.equal(call.resHeaders['content-type'], undefined, `a 204 must not carry a content type; ${describeCall(call)}`);
        assert.equal(call.resBody, '', 'empty body');
        assert.equal(storedUser(), null, 'gotrue.user removed');
        assert.equal(gotrue.currentUser(), null, 'currentUser() is null');
        const r = await rawRefresh(refreshToken);
        assert.equal(r.status, 400, `refresh after logout: ${r.status} ${r.text}`);
        assert.equal(r.json?.error, 'invalid_grant', r.text);
      });

      step('setCookie: true → X-Use-Cookie gives an HttpOnly nf_jwt cookie, cleared on logout (spec §1.6)', ['alicePassword'], async () => {
        const warn = console.warn;
        console.warn = () => {};
        let cg;
        try {
          cg = new GoTrue({ APIUrl: server.apiUrl, setCookie: true });
        } finally {
          console.warn = warn;
        }
        const cookieOf = (call) => {
          const sc = call?.resHeaders['set-cookie'] || '';
          return sc.split(/,(?=\s*[A-Za-z0-9_-]+=)/).map((s) => s.trim()).find((s) => s.startsWith('nf_jwt='));
        };

        let m = mark();
        const remembered = await cg.login(alice.email, S.alicePassword, true);
        let call = callsSince(m, { method: 'POST', path: '/token' })[0];
        assert.equal(call.reqHeaders['x-use-cookie'], '1', 'client sent X-Use-Cookie: 1');
        let c = cookieOf(call);
        assert.ok(c, `Set-Cookie nf_jwt on POST /token with X-Use-Cookie: 1; set-cookie=${JSON.stringify(call.resHeaders['set-cookie'])}`);
        assert.equal(c.split(';')[0], `nf_jwt=${remembered.token.access_token}`, 'cookie value is the access token');
        assert.match(c, /;\s*HttpOnly/i, c);
        assert.match(c, /;\s*Path=\//i, c);
        assert.match(c, /;\s*(Max-Age=[1-9]|Expires=)/i, `a persistent cookie for X-Use-Cookie: 1; ${c}`);
        assert.doesNotMatch(c, /;\s*Secure/i, `plain-http site: no Secure (DESIGN §6); ${c}`);

        m = mark();
        const session = await cg.login(alice.email, S.alicePassword, false);
        call = callsSince(m, { method: 'POST', path: '/token' })[0];
        assert.equal(call.reqHeaders['x-use-cookie'], 'session');
        c = cookieOf(call);
        assert.ok(c, `Set-Cookie nf_jwt for X-Use-Cookie: session; set-cookie=${JSON.stringify(call.resHeaders['set-cookie'])}`);
        assert.doesNotMatch(c, /;\s*(Max-Age|Expires)=/i, `X-Use-Cookie: session gives a session cookie; ${c}`);

        m = mark();
        await session.logout();
        call = callsSince(m, { method: 'POST', path: '/logout' })[0];
        assert.equal(call?.status, 204, describeCall(call));
        c = cookieOf(call);
        assert.ok(c, `logout clears nf_jwt; set-cookie=${JSON.stringify(call?.resHeaders['set-cookie'])}`);
        assert.match(c, /;\s*(Max-Age=(0|-\d+)|Expires=Thu, 01 Jan 1970)/i, `cleared cookie is expired; ${c}`);
      });

      step('CORS preflight from the site origin allows X-Nf-Client (DESIGN §1)', [], async () => {
        const r = await rawRequest(api('/user'), {
          method: 'OPTIONS',
          headers: {
            Origin: server.siteUrl,
            'Access-Control-Request-Method': 'PUT',
            'Access-Control-Request-Headers': 'authorization,content-type,x-nf-client,x-use-cookie,x-jwt-aud',
          },
        });
        assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status} ${r.text}`);
        assert.equal(r.headers['access-control-allow-origin'], server.siteUrl, JSON.stringify(r.headers));
        const allowed = (r.headers['access-control-allow-headers'] || '').toLowerCase();
        for (const h of ['authorization', 'content-type', 'x-nf-client', 'x-use-cookie', 'x-jwt-aud']) {
          assert.ok(allowed === '*' || allowed.split(/\s*,\s*/).includes(h), `${h} allowed; access-control-allow-headers=${allowed}`);
        }
      });

      if (legacy) {
        step('0.9.x sends Content-Type: application/json on bodiless requests and the server accepts it', [], async () => {
          const bodiless = calls.filter((c) => c.reqBody == null && c.status !== undefined);
          assert.ok(bodiless.length > 0, 'some bodiless requests were made');
          const bad = bodiless.filter((c) => c.reqHeaders['content-type'] !== 'application/json' || c.status >= 400);
          const expectedFailures = bad.filter((c) => c.status === 401 || c.status === 404); // deliberate refusals above
          assert.deepEqual(
            bad.filter((c) => !expectedFailures.includes(c)).map(describeCall),
            [],
            'bodiless requests with Content-Type: application/json succeed',
          );
          assert.ok(
            bodiless.some((c) => c.path.endsWith('/logout') && c.status === 204),
            'POST /logout with Content-Type: application/json and no body → 204',
          );
          assert.ok(calls.every((c) => c.reqHeaders['x-nf-client'] === undefined), '0.9.x sends no X-Nf-Client');
        });
      } else {
        step('1.0.1 sends X-Nf-Client: gotrue-js on every request, and drops Content-Type without a body', [], async () => {
          assert.ok(calls.length > 10, 'requests were recorded');
          const missing = calls.filter((c) => c.reqHeaders['x-nf-client'] !== 'gotrue-js');
          assert.deepEqual(missing.map(describeCall), [], 'every request carries X-Nf-Client: gotrue-js');
          const bodilessWithCT = calls.filter((c) => c.reqBody == null && c.reqHeaders['content-type'] !== undefined);
          assert.deepEqual(bodilessWithCT.map(describeCall), [], 'no Content-Type on bodiless requests');
        });
      }

      step('no response carries a JSON content type with an empty body', [], async () => {
        const bad = calls.filter((c) => /json/.test(c.resHeaders['content-type'] || '') && (c.resBody ?? '') === '');
        assert.deepEqual(bad.map(describeCall), [], 'JSON content type implies a JSON body');
      });
    });
  });
}
