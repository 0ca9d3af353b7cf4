// gotrue-js 0.9.29 (Babel CJS; what netlify-identity-widget 1.x / the v1 CDN script bundles),
// installed under the alias gotrue-js-legacy. From ESM its class is `.default.default`.
import '../lib/browser-env.mjs'; // must come first: window, localStorage, fetch spy
import { createRequire } from 'node:module';
import legacy from 'gotrue-js-legacy';
import { defineCompatSuite } from '../lib/flow.mjs';

// 0.9.x rejects with micro-api-client's error classes (its own dependency, resolved from there).
const require = createRequire(import.meta.url);
const microApiClient = require(require.resolve('micro-api-client', { paths: [require.resolve('gotrue-js-legacy')] }));

defineCompatSuite({ generation: '0.9.29', GoTrue: legacy.default, JSONHTTPError: microApiClient.JSONHTTPError });
