// Refresh-grant latency for `scripts/bench`: SESSIONS sessions, each refreshing in a chain.
//
// A refresh token is single-use (rotation with reuse detection, DESIGN §4.3), so wrk cannot
// replay one request: each session here logs in once (before any load starts), then presents
// the refresh token the previous answer gave, one request at a time, for SECONDS. No token is
// presented twice, so the 10 s reuse grace window never applies.
// Node built-ins only. Environment: IDENTITY_URL, EMAIL, PASSWORD, SESSIONS (8), SECONDS (10),
// GO_FILE (optional: after the logins, print `ready` and wait until this file exists),
// FORWARDED_FOR (optional: session i sends X-Forwarded-For <FORWARDED_FOR>.<i+1>, for
// GOTRUE_RATE_LIMIT_HEADER; one address per session, so no two requests of one address are ever
// in flight at once).
// Last line: `refresh requests=N rps=R p50_ms=A p99_ms=B non2xx=C errors=D`.
'use strict';

const http = require('http');
const fs = require('fs');

const identityUrl = new URL(process.env.IDENTITY_URL.replace(/\/+$/, '') + '/token');
const sessions = Number(process.env.SESSIONS || 8);
const seconds = Number(process.env.SECONDS || 10);
const agent = new http.Agent({ keepAlive: true, maxSockets: sessions });

function post(form, session) {
  const body = new URLSearchParams(form).toString();
  const headers = {
    'content-type': 'application/x-www-form-urlencoded',
    'content-length': Buffer.byteLength(body),
  };
  if (process.env.FORWARDED_FOR) headers['x-forwarded-for'] = `${process.env.FORWARDED_FOR}.${session + 1}`;
  return new Promise((resolve, reject) => {
    const request = http.request(identityUrl, { method: 'POST', agent, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((sorted.length * p) / 100) - 1)];
}

async function main() {
  const tokens = [];
  for (let i = 0; i < sessions; i++) {
    const answer = await post({ grant_type: 'password', username: process.env.EMAIL, password: process.env.PASSWORD }, i);
    if (answer.status !== 200) throw new Error(`login ${i} answered ${answer.status}: ${answer.body}`);
    tokens.push(JSON.parse(answer.body).refresh_token);
  }
  if (process.env.GO_FILE) {
    console.log('ready');
    while (!fs.existsSync(process.env.GO_FILE)) await new Promise((r) => setTimeout(r, 50));
  }
  const latencies = [];
  let non2xx = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  await Promise.all(
    tokens.map(async (first, session) => {
      let token = first;
      while (process.hrtime.bigint() < deadline) {
        const sent = process.hrtime.bigint();
        let answer;
        try {
          answer = await post({ grant_type: 'refresh_token', refresh_token: token }, session);
        } catch {
          errors++;
          continue;
        }
        latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
        if (answer.status !== 200) {
          // The chain is broken (a refused token cannot be presented again): log in anew.
          non2xx++;
          if (non2xx <= 3) console.log(`NON2XX ${answer.status} ${answer.body.slice(0, 200)}`);
          const again = await post({ grant_type: 'password', username: process.env.EMAIL, password: process.env.PASSWORD }, session);
          if (again.status !== 200) return;
          token = JSON.parse(again.body).refresh_token;
          continue;
        }
        token = JSON.parse(answer.body).refresh_token;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  console.log(
    `refresh requests=${latencies.length} rps=${(latencies.length / elapsed).toFixed(1)} ` +
      `p50_ms=${percentile(latencies, 50).toFixed(2)} p99_ms=${percentile(latencies, 99).toFixed(2)} ` +
      `non2xx=${non2xx} errors=${errors}`,
  );
}

main().catch((error) => {
  console.error(`refresh-chain: ${error.stack || error}`);
  process.exit(1);
});
