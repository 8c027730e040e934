/*
 * Browser half of Varco's WebAuthn ceremonies (passkeys and security keys as a second factor).
 *
 * The page carries:
 *   <script type="application/json" id="webauthn-options">...options from idp.mfa.webauthn...</script>
 *   <button id="webauthn-start" type="button">...</button>
 *   <form id="webauthn-form" method="post"><input type="hidden" name="webauthn_response">...</form>
 *   <p id="webauthn-error" role="alert" hidden></p>
 * Options with a `user` member start a registration (navigator.credentials.create), others an
 * authentication (navigator.credentials.get). The result goes back as the JSON that py_webauthn's
 * parse_*_credential_json expect (WebAuthn L3 toJSON shape: binary members as base64url).
 *
 * Error texts: the error element may carry translations per DOMException name, e.g.
 * data-not-allowed-error="..." for NotAllowedError, and data-unsupported="..." for old browsers.
 * No dependencies, no inline code: served from 'self' under a strict CSP.
 */
(function () {
  "use strict";

  function base64urlToBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function bufferToBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: base64urlToBuffer(descriptor.id) });
    });
  }

  function publicKeyFromOptions(options) {
    var publicKey = Object.assign({}, options, { challenge: base64urlToBuffer(options.challenge) });
    if (options.user) {
      publicKey.user = Object.assign({}, options.user, { id: base64urlToBuffer(options.user.id) });
      publicKey.excludeCredentials = decodeDescriptors(options.excludeCredentials);
    } else {
      publicKey.allowCredentials = decodeDescriptors(options.allowCredentials);
    }
    return publicKey;
  }

  function credentialToJSON(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: bufferToBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: bufferToBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = bufferToBase64url(response.attestationObject);
      json.response.transports = typeof response.getTransports === "function" ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = bufferToBase64url(response.authenticatorData);
      json.response.signature = bufferToBase64url(response.signature);
      json.response.userHandle = response.userHandle ? bufferToBase64url(response.userHandle) : null;
    }
    return json;
  }

  function showError(errorBox, error) {
    if (!errorBox) {
      return;
    }
    var name = error && error.name ? error.name : "";
    // NotAllowedError -> dataset.notAllowedError (data-not-allowed-error)
    var key = name ? name.charAt(0).toLowerCase() + name.slice(1) : "";
    var text = (key && errorBox.dataset[key]) || (error && error.message) || String(error);
    errorBox.textContent = text;
    errorBox.setAttribute("role", "alert");
    errorBox.hidden = false;
  }

  function start() {
    var optionsElement = document.getElementById("webauthn-options");
    var button = document.getElementById("webauthn-start");
    var form = document.getElementById("webauthn-form");
    var errorBox = document.getElementById("webauthn-error");
    if (!optionsElement || !button || !form) {
      return;
    }
    var field = form.querySelector('input[name="webauthn_response"]');

    if (!window.PublicKeyCredential || !navigator.credentials) {
      button.disabled = true;
      showError(errorBox, {
        message: (errorBox && errorBox.dataset.unsupported) || "This browser does not support security keys or passkeys."
      });
      return;
    }

    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (errorBox) {
        errorBox.hidden = true;
        errorBox.textContent = "";
      }
      button.disabled = true;
      var ceremony;
      try {
        var options = JSON.parse(optionsElement.textContent);
        var publicKey = publicKeyFromOptions(options);
        ceremony = options.user
          ? navigator.credentials.create({ publicKey: publicKey })
          : navigator.credentials.get({ publicKey: publicKey });
      } catch (error) {
        ceremony = Promise.reject(error);
      }
      ceremony
        .then(function (credential) {
          if (!credential) {
            throw new Error("No credential was returned.");
          }
          field.value = JSON.stringify(credentialToJSON(credential));
          form.submit();
        })
        .catch(function (error) {
          button.disabled = false;
          showError(errorBox, error);
        });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
