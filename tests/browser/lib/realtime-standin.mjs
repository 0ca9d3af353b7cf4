// A stand-in for Ably's realtime host inside the browser context: a Playwright `routeWebSocket`
// handler that speaks just enough of Ably's JSON protocol for ably-js to connect with the token
// from the page's authUrl and to renew it when asked, as Ably does before a token expires
// (protocol actions: CONNECTED 4, CLOSE 7, CLOSED 8, AUTH 17). Every connection records the
// tokens it was given (the one in the URL, then each AUTH's), so a test can check what ably-js
// obtained from the token endpoint.

import { verifyHs256 } from './widget.mjs';

const CONNECTED = 4;
const CLOSE = 7;
const CLOSED = 8;
const AUTH = 17;

export class RealtimeStandIn {
  /** @param {string} keySecret the Ably key secret every token must be signed with. */
  constructor(keySecret) {
    this.keySecret = keySecret;
    /** {ws, url, tokens: [{jwt, claims}], messages} per WebSocket the page opened. */
    this.connections = [];
    this.handler = (ws) => this._accept(ws);
  }

  _verify(jwt) {
    return { jwt, claims: verifyHs256(jwt, this.keySecret).claims };
  }

  _accept(ws) {
    const url = new URL(ws.url());
    const n = this.connections.length + 1;
    const conn = { ws, url, tokens: [], messages: [], problems: [], closed: false };
    this.connections.push(conn);
    ws.onClose(() => {
      conn.closed = true;
    });
    let clientId;
    try {
      const token = this._verify(url.searchParams.get('access_token') || '');
      conn.tokens.push(token);
      clientId = token.claims['x-ably-clientId'];
    } catch (e) {
      conn.problems.push(`connect: ${e.message}`);
      ws.close({ code: 1008, reason: 'bad token' });
      return;
    }
    ws.onMessage((raw) => {
      let msg;
      try {
        msg = JSON.parse(String(raw));
      } catch {
        conn.problems.push(`not JSON: ${String(raw).slice(0, 80)}`);
        return;
      }
      conn.messages.push(msg);
      if (msg.action === AUTH) {
        try {
          conn.tokens.push(this._verify(msg.auth?.accessToken || ''));
        } catch (e) {
          conn.problems.push(`AUTH: ${e.message}`);
        }
      } else if (msg.action === CLOSE) {
        ws.send(JSON.stringify({ action: CLOSED }));
      }
    });
    const key = `standin!${n}`;
    ws.send(
      JSON.stringify({
        action: CONNECTED,
        connectionId: `standin-${n}`,
        connectionKey: key,
        connectionDetails: {
          clientId,
          connectionKey: key,
          maxMessageSize: 65536,
          maxFrameSize: 524288,
          maxInboundRate: 250,
          serverId: 'chipflap-test-standin',
          connectionStateTtl: 120000,
          // 0: no idle timer, so the stand-in need not send heartbeats.
          maxIdleInterval: 0,
        },
      }),
    );
  }

  /** Asks ably-js on `conn` for a fresh token (Ably sends AUTH before a token expires). */
  requestReauth(conn) {
    conn.ws.send(JSON.stringify({ action: AUTH }));
  }

  /** Connections ably-js still holds open (a page may have replaced or dropped older ones). */
  open() {
    return this.connections.filter((c) => !c.closed);
  }

  /** The newest connection. */
  latest() {
    return this.connections[this.connections.length - 1];
  }
}
