// The seed's architecture, for `scripts/bench`: its Netlify function `ably-jwt`, served by Node.
//
// Written from the seed's description (ably-labs/netlify-identity-auth, /work/shared/spec/clients.md
// §3): the page calls `/.netlify/functions/ably-jwt?id=<user id>`; the function asks the identity
// server for that user with an admin token (`GET <identity>/admin/users/<id>`, `Authorization:
// Bearer <token>`; on Netlify the token is `context.clientContext.identity.token`, here one
// system token minted by `chipflap token system`), refuses a banned user (an
// `app_metadata.roles` entry matching /^banned/i, or chipflap's `banned_until` in the future)
// or an unconfirmed one, and otherwise signs an Ably JWT with the API key (spec/ably.md §1).
// Node built-ins only (`http`, `crypto`): no npm install.
//
// Environment: IDENTITY_URL (e.g. http://127.0.0.1:9999/.netlify/identity), IDENTITY_TOKEN,
// ABLY_APIKEY (appId.keyId:secret), ABLY_CAPABILITY (default {"*":["subscribe"]}),
// ABLY_TTLSECONDS (default 3600), PORT (default 0: any free port). Listens on 127.0.0.1 and
// prints `seed-ably-jwt listening on http://127.0.0.1:<port>`.
'use strict';

const http = require('http');
const crypto = require('crypto');

const identityUrl = new URL(required('IDENTITY_URL').replace(/\/+$/, '') + '/');
const identityToken = required('IDENTITY_TOKEN');
const apiKey = required('ABLY_APIKEY');
const colon = apiKey.indexOf(':');
if (colon < 1) fail('ABLY_APIKEY: expected appId.keyId:keySecret');
const keyName = apiKey.slice(0, colon);
const keySecret = apiKey.slice(colon + 1);
const capability = process.env.ABLY_CAPABILITY || '{"*":["subscribe"]}';
const ttlSeconds = Number(process.env.ABLY_TTLSECONDS || 3600);

// Keep-alive to the identity server, as a warm function instance would.
const agent = new http.Agent({ keepAlive: true });

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is required`);
  return value;
}

function fail(message) {
  console.error(`seed-ably-jwt: ${message}`);
  process.exit(2);
}

const b64url = (value) => Buffer.from(value).toString('base64url');

function ablyJwt(clientId) {
  const iat = Math.floor(Date.now() / 1000) - 5;
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: keyName }));
  const claims = b64url(
    JSON.stringify({
      iat,
      exp: iat + ttlSeconds,
      'x-ably-capability': capability,
      'x-ably-clientId': clientId,
    }),
  );
  const signature = crypto.createHmac('sha256', keySecret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

/** GET <identity>/admin/users/<id>: resolves { status, user }. */
function fetchUser(id) {
  return new Promise((resolve, reject) => {
    const url = new URL(`admin/users/${encodeURIComponent(id)}`, identityUrl);
    const request = http.get(url, { agent, headers: { authorization: `Bearer ${identityToken}` } }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: response.statusCode, user: response.statusCode === 200 ? JSON.parse(body) : null });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

function refuse(response, status, message) {
  const code = status * 100;
  response.writeHead(status, { 'content-type': 'application/json', 'x-ably-errorcode': String(code) });
  response.end(JSON.stringify({ error: { code, statusCode: status, message } }));
}

function banned(user) {
  const roles = (user.app_metadata && user.app_metadata.roles) || [];
  if (roles.some((role) => /^banned/i.test(String(role)))) return true;
  return Boolean(user.banned_until) && Date.parse(user.banned_until) > Date.now();
}

async function handle(request, response) {
  const url = new URL(request.url, 'http://localhost');
  if (url.pathname !== '/.netlify/functions/ably-jwt') return refuse(response, 404, 'not found');
  const id = url.searchParams.get('id');
  if (!id) return refuse(response, 400, 'id is required');
  const { status, user } = await fetchUser(id);
  if (status === 404) return refuse(response, 403, 'unknown user');
  if (status !== 200) return refuse(response, 500, `the identity server answered ${status}`);
  if (banned(user)) return refuse(response, 403, 'user banned');
  if (!user.confirmed_at) return refuse(response, 403, 'email not confirmed');
  response.writeHead(200, { 'content-type': 'application/jwt', 'cache-control': 'no-store' });
  response.end(ablyJwt(user.id));
}

const server = http.createServer((request, response) => {
  handle(request, response).catch((error) => {
    if (!response.headersSent) refuse(response, 500, String(error && error.message));
    else response.destroy();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`seed-ably-jwt listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
