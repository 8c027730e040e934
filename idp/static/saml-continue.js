// Sends the SAML message on: submits the form (HTTP-POST binding) or follows the link, once any
// hidden logout frames on the page have loaded (at most 3 s). Without JavaScript the visible
// Continue button does the same.
(function () {
  "use strict";
  var target = document.getElementById("saml-continue");
  if (!target) {
    return;
  }
  var frames = document.querySelectorAll("iframe");
  var pending = frames.length;
  var sent = false;
  function send() {
    if (sent) {
      return;
    }
    sent = true;
    if (target.tagName === "FORM") {
      target.submit();
    } else {
      window.location.assign(target.href);
    }
  }
  if (pending === 0) {
    send();
    return;
  }
  Array.prototype.forEach.call(frames, function (frame) {
    frame.addEventListener("load", function () {
      pending -= 1;
      if (pending <= 0) {
        send();
      }
    });
  });
  window.setTimeout(send, 3000);
})();
