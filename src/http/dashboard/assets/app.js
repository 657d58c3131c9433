// flowctl dashboard: live regions. An element `#live` with
// `data-live-interval` (ms) is refreshed from the same URL until the server
// renders it without the attribute (nothing left in flight). No inline code,
// no eval: the page's Content-Security-Policy allows only this file.
(function () {
  "use strict";
  var timer = null;

  function schedule(region) {
    var ms = parseInt(region.getAttribute("data-live-interval") || "", 10);
    if (!ms || ms < 250) return;
    timer = window.setTimeout(refresh, ms);
  }

  function refresh() {
    timer = null;
    var region = document.getElementById("live");
    if (!region) return;
    if (document.hidden) { schedule(region); return; }
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "x-flowctl-live": "1" },
      cache: "no-store"
    }).then(function (resp) {
      if (resp.redirected) {
        // The session ended (logout elsewhere, key revoked): stop asking.
        region.removeAttribute("data-live-interval");
        return null;
      }
      if (!resp.ok) throw new Error("status " + resp.status);
      return resp.text();
    }).then(function (text) {
      if (text === null) return;
      var doc = new DOMParser().parseFromString(text, "text/html");
      var fresh = doc.getElementById("live");
      if (!fresh) return;
      if (fresh.innerHTML !== region.innerHTML) {
        // Keep keyboard focus on the same control when it still exists.
        var focused = document.activeElement && region.contains(document.activeElement)
          ? document.activeElement.id : null;
        region.innerHTML = fresh.innerHTML;
        if (focused) {
          var again = document.getElementById(focused);
          if (again) again.focus();
        }
      }
      var interval = fresh.getAttribute("data-live-interval");
      if (interval) {
        region.setAttribute("data-live-interval", interval);
        schedule(region);
      } else {
        region.removeAttribute("data-live-interval");
        region.setAttribute("data-live-state", "done");
      }
    }).catch(function () {
      // A failed poll (server restarting, session ended) tries again later.
      schedule(region);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var region = document.getElementById("live");
    if (region) schedule(region);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null && region && region.hasAttribute("data-live-interval")) {
        schedule(region);
      }
    });
  });
})();
