// This suite's servers: the shared harness (tests/support/chipflap.mjs: start/stop the compiled
// binary, outbox, CLI, plain HTTP) with the suite's JWT secret.

import { startServer as startChipflap } from '../../../support/chipflap.mjs';

export { jwtPayload, rawRequest } from '../../../support/chipflap.mjs';

/** HS256 key the servers sign with (32+ bytes). */
export const JWT_SECRET = 'js-compat-suite-secret-0123456789abcdef';

/**
 * Starts `chipflap serve` on a free port with a fresh temporary directory (see the shared
 * startServer). `extraEnv`: more variables for this server.
 */
export function startServer({ extraEnv = {}, startTimeoutMs } = {}) {
  return startChipflap({ jwtSecret: JWT_SECRET, tmpPrefix: 'chipflap-js-', env: extraEnv, startTimeoutMs });
}
