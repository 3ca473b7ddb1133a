/* Reloads a page that asks for it (<body data-refresh="SECONDS">) every SECONDS, unless the
 * person is in the middle of something: a form opened (<details open>), a field focused or
 * holding text they typed. Plain ES2017, no inline script (the console's CSP forbids it). */
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!(seconds > 0)) {
    return;
  }
  function busy() {
    if (document.querySelector("details[open]")) {
      return true;
    }
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    return false;
  }
  function tick() {
    if (document.visibilityState === "visible" && !busy()) {
      window.location.reload();
      return;
    }
    window.setTimeout(tick, 2000);
  }
  window.setTimeout(tick, seconds * 1000);
})();
