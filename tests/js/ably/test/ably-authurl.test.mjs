// chipflap's Ably token endpoint (/.netlify/functions/ably-jwt) driven by the published ably-js
// 2.x against the compiled binary. Loopback only: ably-js's REST/Realtime host is 127.0.0.1 and
// its port is our stand-in for Ably (lib/standin.mjs), which also receives chipflap's revocations.
// spec/ably.md §2, §3, §5, §6B; DESIGN.md §5, §6.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ABLY_KEY,
  ABLY_KEY_NAME,
  describe as describeResponse,
  forgeAccessToken,
  signHs256,
  decodeJwt,
  startServer,
} from '../lib/harness.mjs';
import { AblyStandIn, CANONICAL_REQUEST_TOKEN_FIELDS } from '../lib/standin.mjs';
import {
  Ably,
  DEFAULT_CAPABILITY,
  MAX_TTL_S,
  checkAblyJwt,
  loopbackOptions,
  realtimeOutcome,
  requestTokenOutcome,
  tokenRequestMac,
} from '../lib/ably.mjs';

const PASSWORD = 'correct horse battery staple';
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

let server;
let standin;
/** name -> {user, access_token} */
const people = {};

function rest(extra = {}) {
  return new Ably.Rest({ authUrl: server.authUrl, ...loopbackOptions(standin.port), ...extra });
}

/** Asserts an ably-js outcome is a success, showing the server's raw answer to the same request otherwise. */
async function assertOk(outcome, rawRepeat) {
  if (outcome.ok) return outcome.details;
  const raw = rawRepeat ? `\nserver's answer to the same request:\n${describeResponse(await rawRepeat())}` : '';
  assert.fail(`requestToken() rejected: ${JSON.stringify(outcome.error)}${raw}\n--- server log tail ---\n${server.logTail(1500)}`);
}

async function assertRefused(outcome, { statusCode, code }, rawRepeat) {
  const raw = rawRepeat ? `\nserver's answer to the same request:\n${describeResponse(await rawRepeat())}` : '';
  assert.equal(outcome.ok, false, `requestToken() succeeded but must be refused (${statusCode}/${code}): ${JSON.stringify(outcome.details)}${raw}`);
  assert.deepEqual(
    { statusCode: outcome.error.statusCode, code: outcome.error.code },
    { statusCode, code },
    `ably-js error ${JSON.stringify(outcome.error)}${raw}`,
  );
}

/** Checks the wire form of a refusal (spec/ably.md §3 "Non-2xx from authUrl", DESIGN.md §6). */
function assertRefusalWire(r, statusCode, code) {
  const msg = describeResponse(r);
  assert.equal(r.status, statusCode, msg);
  assert.equal(r.headers['content-type'], 'application/json', `Content-Type must be exactly application/json\n${msg}`);
  assert.equal(r.headers['x-ably-errorcode'], String(code), `x-ably-errorcode\n${msg}`);
  assert.ok(r.json && typeof r.json.error === 'object', `body must be {"error":{…}}\n${msg}`);
  assert.equal(r.json.error.code, code, msg);
  assert.equal(r.json.error.statusCode, statusCode, msg);
  assert.equal(typeof r.json.error.message, 'string', msg);
  assert.ok(r.json.error.message.length > 0, msg);
}

function assertJwt(token, userId, opts = {}) {
  const { problems, header, payload } = checkAblyJwt(token, { userId, ...opts });
  assert.deepEqual(problems, [], `Ably JWT problems; header ${JSON.stringify(header)} payload ${JSON.stringify(payload)}`);
  return payload;
}

/** Checks a TokenRequest object as returned by the endpoint (before ably-js sends it on). */
function tokenRequestProblems(tr, userId, { capability = DEFAULT_CAPABILITY } = {}) {
  const p = [];
  const extra = Object.keys(tr).filter((k) => !CANONICAL_REQUEST_TOKEN_FIELDS.includes(k));
  if (extra.length) p.push(`unexpected fields ${JSON.stringify(extra)}`);
  if (tr.keyName !== ABLY_KEY_NAME) p.push(`keyName ${JSON.stringify(tr.keyName)}`);
  if (!(Number.isInteger(tr.ttl) && tr.ttl > 0 && tr.ttl <= MAX_TTL_S * 1000)) p.push(`ttl ${JSON.stringify(tr.ttl)} not ms in (0, ${MAX_TTL_S * 1000}]`);
  if (tr.capability !== capability) p.push(`capability ${JSON.stringify(tr.capability)} != ${JSON.stringify(capability)}`);
  if (tr.clientId !== userId) p.push(`clientId ${JSON.stringify(tr.clientId)} != ${userId}`);
  if (!(Number.isInteger(tr.timestamp) && Math.abs(tr.timestamp - Date.now()) < 60_000)) p.push(`timestamp ${JSON.stringify(tr.timestamp)} not ms near now ${Date.now()}`);
  if (!/^[0-9a-f]{32}$/.test(String(tr.nonce))) p.push(`nonce ${JSON.stringify(tr.nonce)} not 32 hex`);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(String(tr.mac))) p.push(`mac ${JSON.stringify(tr.mac)} not standard padded base64 of 32 bytes`);
  else if (tr.mac !== tokenRequestMac(tr)) p.push(`mac ${tr.mac} != node:crypto ${tokenRequestMac(tr)}`);
  return p;
}

/** The stand-in's verdict on the last TokenRequest ably-js exchanged. */
function assertStandInAccepted(before, userId) {
  const sent = standin.tokenRequests.slice(before);
  assert.equal(sent.length, 1, `stand-in requestToken calls: ${JSON.stringify(sent)}`);
  const [entry] = sent;
  assert.deepEqual(entry.problems, [], `stand-in problems for ${JSON.stringify(entry.body)}`);
  assert.equal(entry.macMatches, true);
  assert.deepEqual(tokenRequestProblems(entry.body, userId), [], `TokenRequest ${JSON.stringify(entry.body)}`);
  return entry;
}

async function person(name, { login = true } = {}) {
  const email = `${name}-${randomUUID().slice(0, 8)}@example.test`;
  const user = await server.createUser(email, PASSWORD);
  const p = { email, user, id: user.id };
  if (login) p.access_token = (await server.login(email, PASSWORD)).access_token;
  people[name] = p;
  return p;
}

before(async () => {
  standin = await new AblyStandIn({ key: ABLY_KEY }).listen();
  server = await startServer({ ablyRestUrl: standin.url });
  // Is the endpoint there at all? A 404 here means the route is not built yet: say so once.
  const probe = await server.ablyEndpoint();
  if (probe.status === 404) {
    process.stderr.write(`# ${server.authUrl} answers 404: the Ably token endpoint is not in this binary yet\n`);
  }
  await person('alice');
  await person('bob'); // banned later
  await person('dave', { login: false }); // control for forged tokens
  await person('frank'); // deleted later
  await person('gina'); // banned later, revocation answered with the BatchResult shape
});

after(async () => {
  await server?.stop();
  await standin?.close();
});

describe('JWT mode (default answer)', () => {
  test('raw GET with a bearer: 200 application/jwt, no-store, a valid Ably JWT', async () => {
    const r = await server.ablyEndpoint({ headers: bearer(people.alice.access_token) });
    const msg = describeResponse(r);
    assert.equal(r.status, 200, msg);
    assert.match(r.headers['content-type'] ?? '', /^application\/jwt\b/, msg);
    assert.match(r.headers['cache-control'] ?? '', /\bno-store\b/, msg);
    assertJwt(r.text.trim(), people.alice.id);
  });

  test('Ably.Rest({authUrl, authHeaders: Bearer}).auth.requestToken() succeeds with our JWT', async () => {
    const before = standin.requests.length;
    const details = await assertOk(
      await requestTokenOutcome(rest({ authHeaders: bearer(people.alice.access_token) })),
      () => server.ablyEndpoint({ headers: bearer(people.alice.access_token) }),
    );
    assert.equal(typeof details.token, 'string');
    assertJwt(details.token, people.alice.id);
    assert.equal(standin.requests.length, before, 'JWT mode must not contact Ably');
  });

  test('nf_jwt cookie (authHeaders: {Cookie}) identifies the caller', async () => {
    const headers = { Cookie: `nf_jwt=${people.alice.access_token}` };
    const details = await assertOk(await requestTokenOutcome(rest({ authHeaders: headers })), () => server.ablyEndpoint({ headers }));
    assertJwt(details.token, people.alice.id);
  });

  test("authMethod: 'POST' (form body) succeeds", async () => {
    const headers = bearer(people.alice.access_token);
    const details = await assertOk(
      await requestTokenOutcome(rest({ authHeaders: headers, authMethod: 'POST', authParams: { foo: 'bar' } })),
      () => server.ablyEndpoint({ method: 'POST', headers, form: { foo: 'bar' } }),
    );
    assertJwt(details.token, people.alice.id);
  });

  test('id= query param equal to the user is accepted (GET and POST)', async () => {
    const headers = bearer(people.alice.access_token);
    const authUrl = `${server.authUrl}?id=${encodeURIComponent(people.alice.id)}`;
    const viaGet = await assertOk(await requestTokenOutcome(rest({ authUrl, authHeaders: headers })), () =>
      server.ablyEndpoint({ headers, query: { id: people.alice.id } }),
    );
    assertJwt(viaGet.token, people.alice.id);
    const viaPost = await assertOk(await requestTokenOutcome(rest({ authUrl, authHeaders: headers, authMethod: 'POST' })), () =>
      server.ablyEndpoint({ method: 'POST', headers, query: { id: people.alice.id }, form: {} }),
    );
    assertJwt(viaPost.token, people.alice.id);
  });

  test('ClientOptions.clientId equal to the user id is accepted', async () => {
    const headers = bearer(people.alice.access_token);
    const details = await assertOk(await requestTokenOutcome(rest({ authHeaders: headers, clientId: people.alice.id })), () =>
      server.ablyEndpoint({ headers, query: { clientId: people.alice.id } }),
    );
    assertJwt(details.token, people.alice.id);
  });

  test('token params from the client (capability, ttl) and unknown params are not trusted', async () => {
    const headers = bearer(people.alice.access_token);
    const client = rest({
      authHeaders: headers,
      authParams: { rnd: '12345', unknown: 'x' },
      defaultTokenParams: { capability: { '*': ['*'], '[*]*': ['*'] }, ttl: 86_400_000 },
    });
    const details = await assertOk(await requestTokenOutcome(client), () =>
      server.ablyEndpoint({
        headers,
        query: { rnd: '12345', unknown: 'x', capability: '{"*":["*"],"[*]*":["*"]}', ttl: '86400000' },
      }),
    );
    assertJwt(details.token, people.alice.id); // default capability, exp - iat <= 3600
  });
});

describe('TokenRequest mode (format=token_request) through the loopback stand-in for Ably', () => {
  test('raw GET ?format=token_request: application/json TokenRequest, no-store, MAC verifies', async () => {
    const r = await server.ablyEndpoint({ headers: bearer(people.alice.access_token), query: { format: 'token_request' } });
    const msg = describeResponse(r);
    assert.equal(r.status, 200, msg);
    assert.match(r.headers['content-type'] ?? '', /^application\/json\b/, msg);
    assert.match(r.headers['cache-control'] ?? '', /\bno-store\b/, msg);
    assert.ok(r.json && typeof r.json === 'object', msg);
    assert.deepEqual(tokenRequestProblems(r.json, people.alice.id), [], msg);
    // ably-js's own signer agrees (and would canonicalise the capability the same way).
    const fields = {};
    for (const f of ['ttl', 'capability', 'clientId', 'timestamp', 'nonce']) if (f in r.json) fields[f] = r.json[f];
    const mine = await standin.signer.auth.createTokenRequest(fields, { key: ABLY_KEY });
    assert.equal(r.json.mac, mine.mac, `ably-js createTokenRequest mac\n${msg}`);
    assert.equal(r.json.capability, mine.capability, 'capability is in ably-js canonical form');
  });

  test('GET authParams {format: token_request}: ably-js exchanges it at the stand-in, MAC matches ably-js createTokenRequest', async () => {
    const headers = bearer(people.alice.access_token);
    const before = standin.tokenRequests.length;
    const details = await assertOk(
      await requestTokenOutcome(rest({ authHeaders: headers, authParams: { format: 'token_request' } })),
      () => server.ablyEndpoint({ headers, query: { format: 'token_request' } }),
    );
    const entry = assertStandInAccepted(before, people.alice.id);
    assert.equal(details.token, entry.reply.token, 'requestToken() resolves with the stand-in TokenDetails');
    assert.equal(details.clientId, people.alice.id);
  });

  test("authMethod 'POST' with format=token_request in the form body", async () => {
    const headers = bearer(people.alice.access_token);
    const before = standin.tokenRequests.length;
    const details = await assertOk(
      await requestTokenOutcome(rest({ authHeaders: headers, authMethod: 'POST', authParams: { format: 'token_request' } })),
      () => server.ablyEndpoint({ method: 'POST', headers, form: { format: 'token_request' } }),
    );
    const entry = assertStandInAccepted(before, people.alice.id);
    assert.equal(details.token, entry.reply.token);
  });

  test('client-supplied capability/ttl do not change the TokenRequest', async () => {
    const headers = bearer(people.alice.access_token);
    const before = standin.tokenRequests.length;
    await assertOk(
      await requestTokenOutcome(
        rest({
          authHeaders: headers,
          authParams: { format: 'token_request' },
          defaultTokenParams: { capability: { '*': ['*'] }, ttl: 86_400_000 },
        }),
      ),
      () => server.ablyEndpoint({ headers, query: { format: 'token_request', capability: '{"*":["*"]}', ttl: '86400000' } }),
    );
    assertStandInAccepted(before, people.alice.id); // checks capability == default, ttl <= 1 h
  });

  test('each TokenRequest has a fresh nonce', async () => {
    const headers = bearer(people.alice.access_token);
    const a = await server.ablyEndpoint({ headers, query: { format: 'token_request' } });
    const b = await server.ablyEndpoint({ headers, query: { format: 'token_request' } });
    assert.equal(a.status, 200, describeResponse(a));
    assert.equal(b.status, 200, describeResponse(b));
    assert.notEqual(a.json.nonce, b.json.nonce);
  });
});

describe('refusals: 401 without a valid session, 403 for the wrong person', () => {
  test('no session: requestToken() rejects 401 and the wire form is an Ably error', async () => {
    assertRefusalWire(await server.ablyEndpoint(), 401, 40100);
    await assertRefused(await requestTokenOutcome(rest()), { statusCode: 401, code: 40100 }, () => server.ablyEndpoint());
  });

  test('garbage, wrongly signed and expired bearer tokens: 401', async () => {
    const real = people.alice.access_token;
    const { header, payload } = decodeJwt(real);
    const cases = {
      garbage: 'not-a-jwt',
      'wrong signature': signHs256(header, payload, 'some-other-secret-0123456789abcdef012345'),
      expired: forgeAccessToken(real, { exp: Math.floor(Date.now() / 1000) - 120 }),
    };
    for (const [what, token] of Object.entries(cases)) {
      const r = await server.ablyEndpoint({ headers: bearer(token) });
      assert.equal(r.status, 401, `${what}: ${describeResponse(r)}`);
      assertRefusalWire(r, 401, 40100);
    }
    await assertRefused(await requestTokenOutcome(rest({ authHeaders: bearer(cases.expired) })), { statusCode: 401, code: 40100 });
  });

  test('no session: Ably.Realtime reaches disconnected, not failed (keeps retrying)', async () => {
    const out = await realtimeOutcome(loopbackOptions(standin.port, { authUrl: server.authUrl }));
    assert.equal(out.state, 'disconnected', `Realtime outcome ${JSON.stringify(out)}`);
    assert.equal(out.reason?.statusCode, 401, `reason ${JSON.stringify(out.reason)}`);
    assert.equal(out.reason?.code, 80019, `reason ${JSON.stringify(out.reason)}`);
    assert.equal(out.reason?.cause?.code, 40100, `reason.cause ${JSON.stringify(out.reason)}`);
    assert.ok(!out.history.some((h) => h.current === 'failed'), `history ${JSON.stringify(out.history)}`);
    assert.equal(standin.upgrades.length, 0, 'no WebSocket may reach the stand-in without a token');
  });

  test('id= of another user: 403/40300 (GET query; POST with id in the URL)', async () => {
    const headers = bearer(people.alice.access_token);
    const other = people.bob.id;
    assertRefusalWire(await server.ablyEndpoint({ headers, query: { id: other } }), 403, 40300);
    const authUrl = `${server.authUrl}?id=${encodeURIComponent(other)}`;
    await assertRefused(await requestTokenOutcome(rest({ authUrl, authHeaders: headers })), { statusCode: 403, code: 40300 });
    await assertRefused(await requestTokenOutcome(rest({ authUrl, authHeaders: headers, authMethod: 'POST' })), { statusCode: 403, code: 40300 }, () =>
      server.ablyEndpoint({ method: 'POST', headers, query: { id: other }, form: {} }),
    );
  });

  test('clientId token param that differs from the user: 403/40300', async () => {
    const headers = bearer(people.alice.access_token);
    assertRefusalWire(await server.ablyEndpoint({ headers, query: { clientId: 'someone-else' } }), 403, 40300);
    await assertRefused(await requestTokenOutcome(rest({ authHeaders: headers, clientId: 'someone-else' })), { statusCode: 403, code: 40300 });
  });

  test('unknown user (valid GoTrue signature, sub not in the database): 403/40300', async () => {
    const token = forgeAccessToken(people.alice.access_token, { sub: randomUUID(), email: 'nobody@example.test' });
    assertRefusalWire(await server.ablyEndpoint({ headers: bearer(token) }), 403, 40300);
  });

  test('unconfirmed user: refused even with a token minted with the JWT secret (login is impossible)', async () => {
    // Tokens name their session, and an unconfirmed user has none: the forged token is refused,
    // as 403 (unconfirmed) or 401 (no live session), never answered with an Ably token.
    const erin = await server.signup(`erin-${randomUUID().slice(0, 8)}@example.test`, PASSWORD);
    const token = forgeAccessToken(people.alice.access_token, { sub: erin.id, email: erin.email, session_id: randomUUID() });
    const r = await server.ablyEndpoint({ headers: bearer(token) });
    assert.ok([401, 403].includes(r.status), `expected a refusal: ${describeResponse(r)}`);
    assertRefusalWire(r, r.status, r.status * 100);
    const outcome = await requestTokenOutcome(rest({ authHeaders: bearer(token) }));
    await assertRefused(outcome, { statusCode: r.status, code: r.status * 100 });
  });

  test('deleted user: 403/40300 with their still-unexpired access token', async () => {
    const { id, access_token } = people.frank;
    const ok = await server.ablyEndpoint({ headers: bearer(access_token) });
    assert.equal(ok.status, 200, `before delete: ${describeResponse(ok)}`);
    await server.adminDelete(id);
    assertRefusalWire(await server.ablyEndpoint({ headers: bearer(access_token) }), 403, 40300);
    await assertRefused(await requestTokenOutcome(rest({ authHeaders: bearer(access_token) })), { statusCode: 403, code: 40300 });
  });
});

describe('ban: revocation at the stand-in, then 403 and Realtime failed', () => {
  test('no revocation for non-ban admin updates', async () => {
    // (Deleting a user, done in an earlier group, revokes too; only count what follows.)
    const before = standin.revocations().length;
    await server.adminUpdate(people.alice.id, { user_metadata: { full_name: 'Alice' } });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(standin.revocations().slice(before), [], 'revokeTokens must only follow a ban or a deletion');
  });

  test('ban POSTs exactly one revokeTokens for clientId:<user id> with Basic auth of the key', async () => {
    const { id, access_token } = people.bob;
    const ok = await server.ablyEndpoint({ headers: bearer(access_token) });
    assert.equal(ok.status, 200, `before ban: ${describeResponse(ok)}`);
    const before = standin.revocations().length;
    await server.ban(id);
    await standin.waitFor(() => standin.revocations().length > before, 5000);
    await new Promise((r) => setTimeout(r, 1000)); // any duplicate would show up here
    const revs = standin.revocations().slice(before);
    assert.equal(revs.length, 1, `revokeTokens requests after one ban: ${JSON.stringify(revs, null, 1)}\n--- server log ---\n${server.logTail(1500)}`);
    const [rev] = revs;
    assert.equal(rev.method, 'POST');
    assert.equal(rev.path, `/keys/${ABLY_KEY_NAME}/revokeTokens`);
    assert.equal(rev.headers.authorization, `Basic ${Buffer.from(ABLY_KEY, 'utf8').toString('base64')}`);
    assert.match(rev.headers['content-type'] ?? '', /^application\/json\b/, `content-type ${rev.headers['content-type']}`);
    let body;
    assert.doesNotThrow(() => {
      body = JSON.parse(rev.body);
    }, `body ${rev.body}`);
    assert.deepEqual(body.targets, [`clientId:${id}`], `body ${rev.body}`);
    const extra = Object.keys(body).filter((k) => !['targets', 'issuedBefore', 'allowReauthMargin'].includes(k));
    assert.deepEqual(extra, [], `unexpected fields in ${rev.body}`);
    if ('allowReauthMargin' in body) assert.equal(body.allowReauthMargin, false, `body ${rev.body}`);
    if ('issuedBefore' in body) assert.ok(Number.isInteger(body.issuedBefore) && Math.abs(body.issuedBefore - Date.now()) < 60_000, `issuedBefore ${body.issuedBefore}`);
  });

  test('banned user: requestToken() rejects with statusCode 403, code 40300 (JWT and TokenRequest modes)', async () => {
    const headers = bearer(people.bob.access_token);
    assertRefusalWire(await server.ablyEndpoint({ headers }), 403, 40300);
    await assertRefused(await requestTokenOutcome(rest({ authHeaders: headers })), { statusCode: 403, code: 40300 }, () => server.ablyEndpoint({ headers }));
    const before = standin.tokenRequests.length;
    await assertRefused(
      await requestTokenOutcome(rest({ authHeaders: headers, authParams: { format: 'token_request' } })),
      { statusCode: 403, code: 40300 },
      () => server.ablyEndpoint({ headers, query: { format: 'token_request' } }),
    );
    assert.equal(standin.tokenRequests.length, before, 'no TokenRequest may be issued to a banned user');
    await assertRefused(await requestTokenOutcome(rest({ authHeaders: { Cookie: `nf_jwt=${people.bob.access_token}` } })), { statusCode: 403, code: 40300 });
  });

  test('banned user: Ably.Realtime with the authUrl reaches failed (403), never connects', async () => {
    const out = await realtimeOutcome(loopbackOptions(standin.port, { authUrl: server.authUrl, authHeaders: bearer(people.bob.access_token) }));
    assert.equal(out.state, 'failed', `Realtime outcome ${JSON.stringify(out)}`);
    assert.equal(out.reason?.statusCode, 403, `reason ${JSON.stringify(out.reason)}`);
    // spec/ably.md §3 [run]: reason 80019/403 with the authUrl's error (40300) as its cause.
    assert.equal(out.reason?.code, 80019, `reason ${JSON.stringify(out.reason)}`);
    assert.equal(out.reason?.cause?.code, 40300, `reason.cause ${JSON.stringify(out.reason)}`);
    assert.equal(standin.upgrades.length, 0, 'no WebSocket may reach the stand-in for a banned user');
  });

  test('a revokeTokens answer in the BatchResult shape (200) also works: one request, ban stands', async () => {
    const { id, access_token } = people.gina;
    standin.revokeReplyShape = 'batch200';
    try {
      const before = standin.revocations().length;
      const user = await server.ban(id);
      assert.ok(user.app_metadata?.roles?.includes('banned'), `ban response ${JSON.stringify(user)}`);
      await standin.waitFor(() => standin.revocations().length > before, 5000);
      await new Promise((r) => setTimeout(r, 1000));
      const revs = standin.revocations().slice(before);
      assert.equal(revs.length, 1, `revokeTokens requests: ${JSON.stringify(revs, null, 1)}`);
      assert.deepEqual(JSON.parse(revs[0].body).targets, [`clientId:${id}`]);
      assertRefusalWire(await server.ablyEndpoint({ headers: bearer(access_token) }), 403, 40300);
    } finally {
      standin.revokeReplyShape = 'array201';
    }
  });

  test('the stand-in saw nothing but requestToken and revokeTokens', () => {
    assert.deepEqual(standin.unexpected(), []);
    assert.equal(standin.upgrades.length, 0);
  });
});

describe('no ABLY_APIKEY configured', () => {
  let bare;
  before(async () => {
    bare = await startServer({ ablyKey: null, ablyRestUrl: standin.url });
  });
  after(async () => {
    await bare?.stop();
  });

  test('503 for a logged-in user; ably-js does not treat it as a permanent refusal', async () => {
    const email = `henry-${randomUUID().slice(0, 8)}@example.test`;
    await bare.createUser(email, PASSWORD);
    const { access_token } = await bare.login(email, PASSWORD);
    const r = await bare.ablyEndpoint({ headers: bearer(access_token) });
    assert.equal(r.status, 503, describeResponse(r));
    const out = await realtimeOutcome(loopbackOptions(standin.port, { authUrl: bare.authUrl, authHeaders: bearer(access_token) }));
    assert.equal(out.state, 'disconnected', `Realtime outcome ${JSON.stringify(out)}\nserver answer: ${describeResponse(r)}`);
  });
});

