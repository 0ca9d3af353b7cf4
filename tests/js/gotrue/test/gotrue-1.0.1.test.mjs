// gotrue-js 1.0.1 (npm latest; what netlify-identity-widget 2.x bundles), loaded as ESM.
import '../lib/browser-env.mjs'; // must come first: window, localStorage, fetch spy
import GoTrue, { JSONHTTPError } from 'gotrue-js';
import { defineCompatSuite } from '../lib/flow.mjs';

defineCompatSuite({ generation: '1.0.1', GoTrue, JSONHTTPError });
