/*
 * Tenantry — passkeys (WebAuthn) in the browser.
 * A static file (the CSP is `script-src 'self'`: no inline script). Buttons
 * and forms opt in with data attributes; the server draws every challenge
 * (`data-options-url`) and checks every answer (`data-url`), so this file
 * only converts between JSON (base64url) and the ArrayBuffers the browser
 * API wants, and says plainly what went wrong.
 *
 *   <button data-passkey="register" data-options-url data-url data-name-input="id" data-status="id">
 *   <button data-passkey="get" data-options-url data-url data-next data-status="id">
 *   <form data-passkey-confirm data-options-url data-status="id">  (fills input[name$=passkey_response])
 */
(function () {
  'use strict';

  var doc = document;

  function b64urlToBuffer(value) {
    var s = value.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufferToB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function csrfToken() {
    try {
      return JSON.parse(doc.body.getAttribute('hx-headers') || '{}')['X-CSRFToken'] || '';
    } catch (e) {
      return '';
    }
  }

  function say(el, text, kind) {
    var box = el && doc.getElementById(el.getAttribute('data-status'));
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
    box.className = 'callout ' + (kind === 'info' ? 'callout--info' : 'callout--danger');
    if (text) box.setAttribute('role', kind === 'info' ? 'status' : 'alert');
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken(), 'Accept': 'application/json' },
      body: JSON.stringify(body || {})
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) {
          var err = new Error(data.detail || ('The server refused the request (' + resp.status + '). Reload the page and try again.'));
          err.server = true;
          throw err;
        }
        return data;
      });
    });
  }

  // What the browser's refusal means, for a person.
  function explain(err, creating) {
    if (err && err.server) return err.message;
    var name = err && err.name;
    if (name === 'NotAllowedError') {
      return creating
        ? 'No passkey was created: the request was cancelled or timed out, or this device has no authenticator that can hold one.'
        : 'No passkey was used: the request was cancelled or timed out, or this device holds no passkey for this site.';
    }
    if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.';
    if (name === 'SecurityError') return 'Passkeys cannot be used on this address. Use the organization\u2019s usual address, or your password.';
    if (name === 'NotSupportedError') return 'This authenticator cannot make a passkey Tenantry accepts. Try another one.';
    if (name === 'AbortError') return 'The passkey request was interrupted. Try again.';
    return 'Something went wrong with the passkey: ' + ((err && err.message) || 'unknown error') + '.';
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && navigator.credentials.create);
  }

  function creationOptions(o) {
    o.challenge = b64urlToBuffer(o.challenge);
    o.user.id = b64urlToBuffer(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return { publicKey: o };
  }

  function requestOptions(o) {
    o.challenge = b64urlToBuffer(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return { publicKey: o };
  }

  function registrationJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        attestationObject: bufferToB64url(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : []
      }
    };
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        authenticatorData: bufferToB64url(r.authenticatorData),
        signature: bufferToB64url(r.signature),
        userHandle: r.userHandle ? bufferToB64url(r.userHandle) : undefined
      }
    };
  }

  // Go where the server says; the same page (perhaps another #fragment) is reloaded, not just scrolled.
  function go(url) {
    var a = doc.createElement('a');
    a.href = url;
    if (a.origin === window.location.origin && a.pathname === window.location.pathname && a.search === window.location.search) {
      if (a.hash) window.history.replaceState(null, '', a.hash);
      window.location.reload();
    } else {
      window.location.assign(a.href);
    }
  }

  function busy(btn, on) {
    btn.disabled = on;
    btn.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function register(btn) {
    var input = doc.getElementById(btn.getAttribute('data-name-input'));
    var name = input ? input.value.trim() : '';
    if (input && !name) {
      say(btn, 'Give the passkey a name first (which device or password manager holds it).');
      input.focus();
      return;
    }
    busy(btn, true);
    say(btn, 'Follow your browser\u2019s prompt to create the passkey\u2026', 'info');
    post(btn.getAttribute('data-options-url'))
      .then(function (o) { return navigator.credentials.create(creationOptions(o)); })
      .then(function (cred) {
        if (!cred) throw new Error('the browser returned no passkey');
        return post(btn.getAttribute('data-url'), { credential: registrationJSON(cred), name: name });
      })
      .then(function (data) { go(data.redirect); })
      .catch(function (err) { say(btn, explain(err, true)); busy(btn, false); });
  }

  function getAssertion(optionsUrl) {
    return post(optionsUrl).then(function (o) { return navigator.credentials.get(requestOptions(o)); })
      .then(function (cred) {
        if (!cred) throw new Error('the browser returned no passkey');
        return assertionJSON(cred);
      });
  }

  function signIn(btn) {
    busy(btn, true);
    say(btn, 'Follow your browser\u2019s prompt to use your passkey\u2026', 'info');
    getAssertion(btn.getAttribute('data-options-url'))
      .then(function (credential) {
        return post(btn.getAttribute('data-url'), { credential: credential, next: btn.getAttribute('data-next') || '' });
      })
      .then(function (data) { go(data.redirect); })
      .catch(function (err) { say(btn, explain(err, false)); busy(btn, false); });
  }

  doc.addEventListener('click', function (event) {
    var btn = event.target.closest && event.target.closest('button[data-passkey]');
    if (!btn) return;
    event.preventDefault();
    if (!supported()) {
      say(btn, 'This browser does not support passkeys. Use another browser, or your password and code.');
      return;
    }
    if (btn.getAttribute('data-passkey') === 'register') register(btn);
    else signIn(btn);
  });

  // A form that must carry a passkey confirmation (removing the last second factor).
  doc.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.matches || !form.matches('form[data-passkey-confirm]')) return;
    var hidden = form.querySelector('input[name$="passkey_response"]');
    if (!hidden || hidden.value) return;
    event.preventDefault();
    if (!supported()) {
      say(form, 'This browser does not support passkeys, so it cannot confirm with one.');
      return;
    }
    say(form, 'Confirm with your passkey in your browser\u2019s prompt\u2026', 'info');
    getAssertion(form.getAttribute('data-options-url'))
      .then(function (credential) {
        hidden.value = JSON.stringify(credential);
        form.submit();
      })
      .catch(function (err) { say(form, explain(err, false)); });
  });

  // Without WebAuthn, say so where a passkey button is offered.
  function markUnsupported() {
    if (supported()) return;
    var buttons = doc.querySelectorAll('button[data-passkey]');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
      say(buttons[i], 'This browser does not support passkeys.', 'info');
    }
  }
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', markUnsupported);
  else markUnsupported();
})();
