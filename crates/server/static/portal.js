// keyward portal: the one script. It copies a secret to the clipboard without putting
// it in the visible page, asks before destructive form posts, and runs the API tokens'
// JWT fields (unlock, copy, show, lock). Loaded from this origin only (the
// Content-Security-Policy allows no inline script).
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
  var locks = [];
  document.querySelectorAll("[data-jwt]").forEach(function (box) {
    locks.push(jwtField(box));
  });
  // Leaving the page (or putting it in the back-forward cache) forgets every JWT, and
  // the secret a page showed once.
  window.addEventListener("pagehide", function () {
    locks.forEach(function (lock) { lock(""); });
    document.querySelectorAll("input[type=hidden][id=new-secret]").forEach(function (input) { input.value = ""; });
  });
});

// One API token's JWT field. The JWT that Unlock Token fetches lives in this closure
// only: it is put in the page as text only while shown, and Lock Token, closing the
// entry or leaving the page drops it.
function jwtField(box) {
  var secret = null;
  var value = box.querySelector("[data-jwt-value]");
  var unlock = box.querySelector("form[data-jwt-unlock]");
  var copy = box.querySelector("[data-jwt-copy]");
  var show = box.querySelector("[data-jwt-show]");
  var lockButton = box.querySelector("[data-jwt-lock]");
  var status = box.querySelector("[data-jwt-status]");
  var entry = box.closest("details");
  var say = function (text) { status.textContent = text; };
  var unlocked = function (yes) {
    unlock.hidden = yes;
    copy.hidden = !yes;
    show.hidden = !yes;
    lockButton.hidden = !yes;
  };
  // Bumped by every lock: an unlock answer that arrives after a lock is dropped.
  var epoch = 0;
  var lock = function (text) {
    var had = secret !== null;
    epoch += 1;
    secret = null;
    value.textContent = "Locked";
    unlocked(false);
    if (had || text) { say(text); }
  };
  unlock.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }
    event.preventDefault();
    var submit = unlock.querySelector("button[type=submit]");
    if (submit.disabled) { return; }
    submit.disabled = true;
    var asked = epoch;
    say("Unlocking…");
    fetch(unlock.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(unlock)),
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      submit.disabled = false;
      if (asked !== epoch || (entry && !entry.open)) {
        say("Locked before the new JWT arrived; the JWT before it no longer works. Unlock again to get one.");
        return;
      }
      if (!result.ok || typeof result.data.token !== "string") {
        say(result.data.error || "Unlocking failed; reload the page and try again.");
        return;
      }
      secret = result.data.token;
      value.textContent = "Unlocked (hidden)";
      var generation = entry && entry.querySelector("[data-jwt-generation]");
      if (generation && result.data.generation) { generation.textContent = String(result.data.generation); }
      unlocked(true);
      say("A new JWT was made; the one before it no longer works.");
      copy.focus();
    }).catch(function () {
      submit.disabled = false;
      say("Unlocking failed; reload the page and try again.");
    });
  });
  copy.addEventListener("click", function () {
    if (secret === null) { return; }
    if (!navigator.clipboard) { say("Copying is not available in this browser."); return; }
    navigator.clipboard.writeText(secret).then(
      function () { say("Copied to the clipboard."); },
      function () { say("Copying failed; allow clipboard access and try again."); }
    );
  });
  show.addEventListener("click", function () {
    if (secret !== null) { value.textContent = secret; }
  });
  lockButton.addEventListener("click", function () { lock("Locked."); });
  if (entry) {
    entry.addEventListener("toggle", function () {
      if (!entry.open) { lock(""); }
    });
  }
  return lock;
}
