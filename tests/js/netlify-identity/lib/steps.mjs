// Shared test plumbing: ordered steps with prerequisites, and assertions on what chipflap answers.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeError } from './recorder.mjs';
import { jwtPayload } from './harness.mjs';

export const URL_SAFE = /^[A-Za-z0-9_-]+$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
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
 * Returns `step(name, needs, fn)`: a test that is skipped when the server did not start or when a
 * key of the shared state `S` listed in `needs` is missing (an earlier step failed), and whose
 * failure message ends with the server output written during the step.
 */
export function makeStep(getServer, S) {
  return (name, needs, fn) =>
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      const server = getServer();
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
}

/** Awaits `promise`, which must reject; returns the error (assertion failure if it resolves). */
export async function rejection(promise, what) {
  try {
    const value = await promise;
    assert.fail(`${what}: expected a rejection, but it resolved to ${JSON.stringify(value)?.slice(0, 500)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
}

/**
 * Asserts an AuthError from a call that went through gotrue-js: the package wraps gotrue-js's
 * JSONHTTPError with `AuthError.from`, which keeps the message and puts the HTTP error in `cause`
 * (the AuthError's own `status` stays undefined).
 */
export function assertWrappedHttpError(err, { status, message, AuthError }, what) {
  assert.ok(err instanceof AuthError, `${what}: AuthError expected; got ${describeError(err)}`);
  assert.equal(err.cause?.status, status, `${what}: HTTP status (err.cause.status); ${describeError(err)}`);
  assert.ok(err.cause?.json && typeof err.cause.json === 'object', `${what}: a JSON error body; ${describeError(err)}`);
  if (message !== undefined) assert.equal(err.message, message, `${what}: message; ${describeError(err)}`);
}

/** Asserts an AuthError thrown by the package's own fetch code (server paths, admin.*): status on the error. */
export function assertDirectHttpError(err, { status, message, AuthError }, what) {
  assert.ok(err instanceof AuthError, `${what}: AuthError expected; got ${describeError(err)}`);
  assert.equal(err.status, status, `${what}: status; ${describeError(err)}`);
  if (message !== undefined) assert.equal(err.message, message, `${what}: message; ${describeError(err)}`);
}

export function assertNoSecrets(obj, where) {
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

/** Checks a token response body `{access_token, token_type:"bearer", expires_in, refresh_token}`. */
export function assertTokenResponse(body, where) {
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

/**
 * Checks a normalised `User` of @netlify/identity (toUser() of a GoTrue user object): the fields
 * that come only from a full `/user`-style answer are present.
 */
export function assertFullUser(user, { id, email }, where) {
  assert.ok(user && typeof user === 'object', `${where}: a User; got ${JSON.stringify(user)}`);
  if (id !== undefined) assert.equal(user.id, id, `${where}: id`);
  else assert.match(String(user.id), UUID, `${where}: id is a UUID; got ${user.id}`);
  if (email !== undefined) assert.equal(user.email, email, `${where}: email`);
  assert.equal(typeof user.createdAt, 'string', `${where}: createdAt (created_at) present; got ${JSON.stringify(user)}`);
  assert.equal(typeof user.updatedAt, 'string', `${where}: updatedAt (updated_at) present`);
  assert.equal(user.provider, 'email', `${where}: provider (app_metadata.provider) is "email"; got ${JSON.stringify(user.appMetadata)}`);
  assert.ok(user.appMetadata && typeof user.appMetadata === 'object', `${where}: appMetadata is an object`);
  assert.ok(user.userMetadata && typeof user.userMetadata === 'object', `${where}: userMetadata is an object`);
  assertNoSecrets(user.appMetadata, `${where} appMetadata`);
  assertNoSecrets(user.userMetadata, `${where} userMetadata`);
}

/** Parses the JSON body of a recorded call (assertion failure with the call when it is not JSON). */
export function jsonOf(call, describe) {
  try {
    return JSON.parse(call.resBody);
  } catch {
    assert.fail(`response is not JSON: ${describe(call)}`);
  }
}
