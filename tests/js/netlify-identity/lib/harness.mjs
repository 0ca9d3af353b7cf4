// This suite's servers: the shared harness (tests/support/chipflap.mjs: start/stop the compiled
// binary, outbox, CLI incl. addUser()/systemToken(), plain HTTP) with the suite's JWT secret and
// GOTRUE_OPERATOR_TOKEN; a missing binary is built with SQLX_OFFLINE=true.

import { startServer as startChipflap } from '../../../support/chipflap.mjs';

export { jwtPayload, rawRequest } from '../../../support/chipflap.mjs';

/** HS256 key the servers sign with (32+ bytes). */
export const JWT_SECRET = 'netlify-identity-suite-secret-0123456789abcdef';
/** GOTRUE_OPERATOR_TOKEN of the servers: a static admin bearer (DESIGN §3). */
export const OPERATOR_TOKEN = 'netlify-identity-suite-operator-token-0123456789abcdef';

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory (see the shared
 * startServer). `extraEnv`: more variables for this server.
 */
export function startServer({ extraEnv = {}, startTimeoutMs } = {}) {
  return startChipflap({
    jwtSecret: JWT_SECRET,
    operatorToken: OPERATOR_TOKEN,
    tmpPrefix: 'chipflap-nid-',
    buildEnv: { SQLX_OFFLINE: 'true' },
    env: extraEnv,
    startTimeoutMs,
  });
}
