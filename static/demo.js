// The seed application's page script: connect to Ably with the authUrl the seed builds,
// `/.netlify/functions/ably-jwt?id=<user id>`, and show what the token endpoint answered.
(function () {
  'use strict';
  var statusLine = document.getElementById('status');
  var connectionLine = document.getElementById('connection');
  var client = null;

  function show(text, state, clientId) {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
    statusLine.dataset.clientId = clientId || '';
  }

  function claimsOf(jwt) {
    var part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4)));
  }

  if (window.netlifyIdentity) {
    ['init', 'login', 'logout', 'error', 'open', 'close'].forEach(function (event) {
      netlifyIdentity.on(event, function (arg) {
        console.log('netlifyIdentity:', event, arg && arg.email ? arg.email : arg);
      });
    });
    netlifyIdentity.on('login', function () { netlifyIdentity.close(); });
    netlifyIdentity.on('logout', function () {
      if (client) { client.close(); client = null; }
      show('Not connected.', 'idle');
      connectionLine.textContent = '';
    });
  }

  async function authenticate() {
    var stored = localStorage.getItem('gotrue.user');
    if (!stored) {
      show('Log in first: there is no user on this page.', 'refused');
      return;
    }
    var id = JSON.parse(stored).id;
    var authUrl = location.origin + '/.netlify/functions/ably-jwt?id=' + id;
    // A fresh access token (and with it a fresh nf_jwt cookie) before asking for an Ably token.
    var user = window.netlifyIdentity && netlifyIdentity.currentUser();
    if (user) {
      try { await user.jwt(); } catch (e) { /* the endpoint will say why */ }
    }
    show('Asking the token endpoint…', 'pending');
    var response = await fetch(authUrl, { credentials: 'same-origin' });
    if (!response.ok) {
      var body = await response.json().catch(function () { return {}; });
      var why = body.error && body.error.message ? body.error.message : response.statusText;
      show('Refused (' + response.status + '): ' + why, 'refused');
      return;
    }
    var claims = claimsOf(await response.text());
    var clientId = claims['x-ably-clientId'];
    show('Token issued for clientId ' + clientId + ', expires ' + new Date(claims.exp * 1000).toISOString() +
      ', capability ' + claims['x-ably-capability'], 'issued', clientId);
    if (window.Ably) {
      if (client) { client.close(); }
      client = new Ably.Realtime({ authUrl: authUrl });
      client.connection.on(function (change) {
        var reason = change.reason ? ' (' + change.reason.message + ')' : '';
        connectionLine.textContent = 'Ably connection: ' + change.current + reason;
      });
    }
  }

  document.getElementById('authenticate').addEventListener('click', function () {
    authenticate().catch(function (e) { show('Failed: ' + e.message, 'refused'); });
  });
})();
