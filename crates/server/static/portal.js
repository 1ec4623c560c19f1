// keyward portal: the one script. It copies a secret to the clipboard without putting
// it in the visible page, and asks before destructive form posts. Loaded from this
// origin only (the Content-Security-Policy allows no inline script).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy-from"));
      var status = document.getElementById(button.getAttribute("data-copy-status"));
      var say = function (text) { if (status) { status.textContent = text; } };
      if (!source || !navigator.clipboard) {
        say("Copying is not available in this browser.");
        return;
      }
      navigator.clipboard.writeText(source.value).then(
        function () { say("Copied to the clipboard."); },
        function () { say("Copying failed; allow clipboard access and try again."); }
      );
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
});
