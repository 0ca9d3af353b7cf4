// Minimal browser stand-ins under which @netlify/identity takes its *browser* code paths in Node.
// Import this module BEFORE the package, then call setPageUrl(<site url>) before the first call.
//
// What the package reads in a browser (read from node_modules/@netlify/identity/dist/main.js):
// - `window` and `window.location`: `isBrowser()` is `typeof window !== 'undefined' &&
//   typeof window.location !== 'undefined'`; the API URL is `location.origin + '/.netlify/identity'`
//   (fixed when first needed, then cached for the life of the module).
// - `location.hash`: handleAuthCallback() parses it; `location.href = …` is how oauthLogin() navigates.
// - `history.replaceState`: handleAuthCallback() clears the hash with it.
// - `document.cookie`: the package writes `nf_jwt` / `nf_refresh` (JS-visible) and reads them back in
//   getUser() / hydrateSession().
// - `localStorage` (`gotrue.user`) and `addEventListener('storage', …)`: gotrue-js 1.0.1 underneath.
// - `fetch`, `atob`, `TextDecoder`, `AbortController`: Node's own.
// No jsdom: a plain object per global is enough.

import './recorder.mjs';

// --- localStorage (Map-backed) -------------------------------------------------------------
const store = new Map();
export const localStorage = {
  getItem: (key) => (store.has(String(key)) ? store.get(String(key)) : null),
  setItem: (key, value) => {
    store.set(String(key), String(value));
  },
  removeItem: (key) => {
    store.delete(String(key));
  },
  clear: () => store.clear(),
  key: (i) => [...store.keys()][i] ?? null,
  get length() {
    return store.size;
  },
};

/** Reads and parses localStorage["gotrue.user"] (null when absent). */
export function storedUser() {
  const raw = localStorage.getItem('gotrue.user');
  return raw === null ? null : JSON.parse(raw);
}

// --- location / history ----------------------------------------------------------------------
/** Navigations the page asked for (assignments to location.href / location.assign); none is followed. */
export const navigations = [];

class FakeLocation {
  constructor() {
    this._url = new URL('http://page-url-not-set.invalid/');
  }
  get href() {
    return this._url.href;
  }
  set href(v) {
    navigations.push(String(v));
  }
  assign(v) {
    navigations.push(String(v));
  }
  replace(v) {
    navigations.push(String(v));
  }
  get origin() {
    return this._url.origin;
  }
  get protocol() {
    return this._url.protocol;
  }
  get host() {
    return this._url.host;
  }
  get hostname() {
    return this._url.hostname;
  }
  get port() {
    return this._url.port;
  }
  get pathname() {
    return this._url.pathname;
  }
  get search() {
    return this._url.search;
  }
  get hash() {
    return this._url.hash;
  }
  set hash(v) {
    this._url.hash = v;
  }
  toString() {
    return this._url.href;
  }
}

export const location = new FakeLocation();

/** Sets the page URL (as a full page load to it would). */
export function setPageUrl(url) {
  location._url = new URL(url);
}

export const history = {
  replaceState(_state, _title, url) {
    if (url !== undefined && url !== null) location._url = new URL(String(url), location._url);
  },
  pushState(_state, _title, url) {
    if (url !== undefined && url !== null) location._url = new URL(String(url), location._url);
  },
};

// --- document.cookie (a tiny cookie jar for one origin) ---------------------------------------
const jar = new Map(); // name -> { value, expiresAt (ms | null) }
/** Every string assigned to document.cookie, in order (to check attributes). */
export const cookieWrites = [];

export const document = {
  get cookie() {
    const now = Date.now();
    const out = [];
    for (const [name, c] of jar) {
      if (c.expiresAt !== null && c.expiresAt <= now) {
        jar.delete(name);
        continue;
      }
      out.push(`${name}=${c.value}`);
    }
    return out.join('; ');
  },
  set cookie(str) {
    str = String(str);
    cookieWrites.push(str);
    const [pair, ...attrs] = str.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let expiresAt = null;
    for (const a of attrs) {
      const [k, ...rest] = a.split('=');
      const key = k.trim().toLowerCase();
      const v = rest.join('=').trim();
      if (key === 'expires') expiresAt = Date.parse(v);
      if (key === 'max-age') expiresAt = Date.now() + Number(v) * 1000;
    }
    if (expiresAt !== null && expiresAt <= Date.now()) jar.delete(name);
    else jar.set(name, { value, expiresAt });
  },
};

/** The decoded value of a cookie in the jar, or null. */
export function cookieValue(name) {
  const m = document.cookie.split('; ').find((p) => p.startsWith(`${name}=`));
  return m === undefined ? null : decodeURIComponent(m.slice(name.length + 1));
}

/**
 * Puts a cookie in the jar as a server's Set-Cookie would (not recorded in cookieWrites, which
 * lists only what page code assigned to document.cookie).
 */
export function plantCookie(name, value) {
  jar.set(name, { value: encodeURIComponent(value), expiresAt: null });
}

/** Empties the cookie jar. */
export function clearCookies() {
  jar.clear();
}

// --- window events (gotrue-js and the package register `storage` listeners) ------------------
const listeners = new Map();
function addEventListener(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
}
function removeEventListener(type, fn) {
  listeners.get(type)?.delete(fn);
}
/** Delivers an event to the window listeners (e.g. a `storage` event from "another tab"). */
export function fireWindowEvent(type, event) {
  for (const fn of listeners.get(type) ?? []) fn({ type, ...event });
}

globalThis.window = globalThis;
globalThis.location = location;
globalThis.history = history;
globalThis.document = document;
globalThis.localStorage = localStorage;
globalThis.addEventListener = addEventListener;
globalThis.removeEventListener = removeEventListener;
