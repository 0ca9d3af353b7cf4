// Emulates what @netlify/identity reads inside a Netlify Function / Edge Function (its *server*
// code paths), so the package can run in plain Node against chipflap. No `window` is defined.
//
// What the package reads on the server (from node_modules/@netlify/identity/dist/main.js):
// - `globalThis.netlifyIdentityContext = { url, token, user }`: set per request by the Netlify
//   runtime. `url` is the identity API root; `token` is the admin ("operator") token that admin.*
//   sends as `Authorization: Bearer` (on Netlify: the short-lived system JWT `{sub:"0"}`; with
//   chipflap: `chipflap token system`, or GOTRUE_OPERATOR_TOKEN); `user` is the caller's verified
//   JWT claims (getUser() falls back to them).
// - `globalThis.Netlify.context.url` (the site URL; `<url>/.netlify/identity` is used when the
//   identity context has no url) and `globalThis.Netlify.context.cookies` (get/set/delete: where
//   login() puts `nf_jwt` / `nf_refresh` and logout() / refreshSession() read them).
// - `process.env.URL` (the site URL; last fallback for the identity URL).
// Which of these the runtime sets when is Netlify's business; the tests set exactly what each
// call needs and say so.

import './recorder.mjs';

/** A stand-in for Netlify's `context.cookies` (the request's cookies plus the response's Set-Cookie list). */
export class CookieJar {
  constructor(initial = {}) {
    this.values = new Map(Object.entries(initial));
    /** Every set/delete call, in order: { op: 'set', name, value, options } | { op: 'delete', name }. */
    this.ops = [];
  }
  get(name) {
    return this.values.get(name);
  }
  set(input, value) {
    const opts = typeof input === 'string' ? { name: input, value } : { ...input };
    this.values.set(opts.name, opts.value);
    this.ops.push({ op: 'set', name: opts.name, value: opts.value, options: opts });
  }
  delete(input) {
    const name = typeof input === 'string' ? input : input.name;
    this.values.delete(name);
    this.ops.push({ op: 'delete', name });
  }
  /** The options of the last `set` of `name` (undefined if none). */
  lastSet(name) {
    for (let i = this.ops.length - 1; i >= 0; i--) if (this.ops[i].op === 'set' && this.ops[i].name === name) return this.ops[i].options;
    return undefined;
  }
}

/**
 * Sets the globals of one emulated function invocation.
 * @param {object} o
 * @param {string} [o.siteUrl]      Netlify.context.url
 * @param {object} [o.identity]     netlifyIdentityContext ({url, token, user}); omitted = not set
 * @param {CookieJar} [o.cookies]   Netlify.context.cookies (a new empty jar when omitted)
 * @param {string} [o.envUrl]       process.env.URL
 * @returns {CookieJar} the cookie jar in use
 */
export function invocation({ siteUrl, identity, cookies = new CookieJar(), envUrl } = {}) {
  globalThis.Netlify = { context: { ...(siteUrl ? { url: siteUrl } : {}), cookies } };
  if (identity) globalThis.netlifyIdentityContext = { ...identity };
  else delete globalThis.netlifyIdentityContext;
  if (envUrl) process.env.URL = envUrl;
  else delete process.env.URL;
  return cookies;
}
