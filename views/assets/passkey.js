/*
 * Gatehouse passkey ceremonies, on top of @simplewebauthn/browser (served as
 * /assets/simplewebauthn-browser.js, global SimpleWebAuthnBrowser). Every element with
 * data-passkey="sign-in | second-factor | register" gets a button that runs its ceremony:
 *
 *   1. POST JSON { csrf, … } to data-options-url  → { ok, options } | { ok: false, error }
 *   2. navigator.credentials via startAuthentication / startRegistration
 *   3. POST JSON { csrf, response, … } to data-verify-url → { ok, redirect } | { ok: false, error }
 *
 * The sign-in page also starts conditional mediation (passkeys offered in the User ID field's
 * autofill) where the browser supports it. Messages go to the panel's role="alert" element.
 */
(function () {
  'use strict';

  var lib = window.SimpleWebAuthnBrowser;

  var CANCELLED = {
    'sign-in': 'Sign-in with a passkey was cancelled. You can try again or use your password.',
    'second-factor': 'Verification with your security key or device was cancelled. You can try again or choose another way to verify.',
    register: 'Adding a passkey was cancelled. You can try again.',
  };
  var WAITING = {
    'sign-in': 'Follow the instructions from your browser or device to use your passkey.',
    'second-factor': 'Follow the instructions from your browser or device to use your security key or passkey.',
    register: 'Follow the instructions from your browser or device to create your passkey.',
  };
  var FAILED = 'Your browser could not use a passkey here. Try again, or use another way to sign in.';
  var NETWORK = 'We could not reach Gatehouse. Check your connection and try again.';

  function postJson(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    }).then(
      function (res) {
        return res.json().then(
          function (data) {
            if (data && data.ok) return data;
            var message = (data && (data.error_description || (typeof data.error === 'string' && data.ok === false ? data.error : null))) || FAILED;
            throw Object.assign(new Error(message), { shown: true });
          },
          function () {
            throw Object.assign(new Error(FAILED), { shown: true });
          },
        );
      },
      function () {
        throw Object.assign(new Error(NETWORK), { shown: true });
      },
    );
  }

  function setup(panel) {
    var mode = panel.getAttribute('data-passkey');
    var button = panel.querySelector('[data-passkey-button]');
    var message = panel.querySelector('[data-passkey-message]');
    var status = panel.querySelector('[data-passkey-status]');
    var unsupported = panel.querySelector('[data-passkey-unsupported]');
    var remember = panel.querySelector('[data-passkey-remember]');
    var nameInput = panel.querySelector('[data-passkey-name]');
    var csrf = panel.getAttribute('data-csrf');
    var optionsUrl = panel.getAttribute('data-options-url');
    var verifyUrl = panel.getAttribute('data-verify-url');
    var leaving = false;
    // A passkey's answer is on its way to the server: a second ceremony now (the button pressed while the
    // autofill's answer is being checked) would race it, and the loser would land on a finished sign-in.
    var verifying = false;

    if (!lib || !lib.browserSupportsWebAuthn()) {
      // The explanation stays visible; the button stays hidden (nothing to press that cannot work).
      panel.setAttribute('data-passkey-state', 'unsupported');
      return;
    }
    unsupported.hidden = true;
    button.hidden = false;

    function show(el, text) {
      el.textContent = text || '';
      el.hidden = !text;
    }

    function extra() {
      var body = { csrf: csrf };
      if (remember) body.remember = remember.checked;
      if (nameInput) body.name = nameInput.value;
      return body;
    }

    function explain(err) {
      if (err && err.shown) return err.message;
      var name = err && err.name;
      if (name === 'NotAllowedError' || name === 'AbortError') return CANCELLED[mode];
      if (mode === 'register' && name === 'InvalidStateError') return 'This passkey or security key is already registered to your account.';
      return FAILED;
    }

    function ceremony(conditional) {
      var start = mode === 'register' ? lib.startRegistration : lib.startAuthentication;
      return postJson(optionsUrl, extra())
        .then(function (data) {
          if (!conditional) show(status, WAITING[mode]);
          var args = { optionsJSON: data.options };
          if (conditional) args.useBrowserAutofill = true;
          return start(args);
        })
        .then(function (response) {
          var body = extra();
          body.response = response;
          verifying = true;
          return postJson(verifyUrl, body).catch(function (err) {
            verifying = false;
            throw err;
          });
        })
        .then(function (data) {
          leaving = true; // one ceremony finished: no other may start or report on this page
          show(status, mode === 'register' ? 'Passkey added.' : 'Signed in. Continuing…');
          window.location.assign(data.redirect || window.location.href);
        });
    }

    button.addEventListener('click', function () {
      if (leaving || verifying) return;
      if (mode === 'register' && nameInput && !nameInput.checkValidity()) {
        nameInput.reportValidity();
        return;
      }
      show(message, '');
      button.disabled = true;
      panel.setAttribute('aria-busy', 'true');
      ceremony(false)
        .catch(function (err) {
          show(status, '');
          show(message, explain(err));
          panel.setAttribute('data-passkey-state', 'failed');
          button.focus();
        })
        .then(function () {
          button.disabled = false;
          panel.removeAttribute('aria-busy');
        });
    });
    panel.setAttribute('data-passkey-state', 'ready');

    // Conditional mediation: passkeys appear in the User ID field's autofill. The button aborts it
    // (the library keeps one ceremony at a time), so its failures are never shown.
    if (mode === 'sign-in' && lib.browserSupportsWebAuthnAutofill) {
      lib.browserSupportsWebAuthnAutofill().then(function (supported) {
        if (!supported) return;
        panel.setAttribute('data-passkey-autofill', 'on');
        ceremony(true).catch(function (err) {
          if (!leaving && err && err.shown) show(message, err.message);
        });
      });
    }
  }

  function init() {
    var panels = document.querySelectorAll('[data-passkey]');
    for (var i = 0; i < panels.length; i++) setup(panels[i]);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
