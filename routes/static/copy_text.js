// Copy buttons: a button[data-copy-target] copies the text of the element with that id (a
// read-only textarea) to the clipboard, and says so in the [data-copy-status] next to it.
// The buttons are hidden until this script shows them: without it the text can still be
// selected and copied by hand.
// Vendored, no dependencies; loaded from this origin only (the CSP allows no inline script).
(function () {
  "use strict";

  function statusFor(button) {
    var line = button.parentNode;
    return line ? line.querySelector("[data-copy-status]") : null;
  }

  function say(button, text) {
    var status = statusFor(button);
    if (status) {
      status.textContent = text;
    }
  }

  function copyBySelecting(source) {
    // Older browsers, or a page not served over HTTPS: select the text and copy it.
    source.focus();
    source.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) {
      return;
    }
    var text = source.value !== undefined ? source.value : source.textContent;
    var copied = function () {
      say(button, "Copied.");
    };
    var byHand = function () {
      if (copyBySelecting(source)) {
        copied();
      } else {
        say(button, "Could not copy: the text is selected, copy it with your keyboard.");
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(copied, byHand);
    } else {
      byHand();
    }
  }

  var buttons = document.querySelectorAll("button[data-copy-target]");
  for (var i = 0; i < buttons.length; i += 1) {
    (function (button) {
      button.hidden = false;
      say(button, "");
      button.addEventListener("click", function () {
        copy(button);
      });
    })(buttons[i]);
  }
})();
