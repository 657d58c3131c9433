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

  // Times arrive in UTC; show them in the viewer's time zone (a schedule's in
  // its own, data-tz), with the UTC instant on hover.
  function localizeTimes(root) {
    var els = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.getAttribute("data-localized")) continue;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var tz = el.getAttribute("data-tz");
      var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
        minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
      if (tz) opts.timeZone = tz;
      try {
        // 2026-01-15 11:00:05 CET: the same shape as the server's UTC text.
        var p = {};
        var parts = new Intl.DateTimeFormat("en-US", opts).formatToParts(d);
        for (var j = 0; j < parts.length; j++) p[parts[j].type] = parts[j].value;
        var shown = p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second +
          " " + p.timeZoneName;
        el.textContent = tz ? shown + " (" + tz + ")" : shown;
      } catch (e) { continue; }
      el.setAttribute("title", el.getAttribute("datetime").replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC"));
      el.setAttribute("data-localized", "1");
    }
  }

  var observer = window.MutationObserver ? new MutationObserver(function () {
    localizeTimes(document);
  }) : null;

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    if (observer) observer.observe(document.body, { childList: true, subtree: true });
    var region = document.getElementById("live");
    if (region) schedule(region);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null && region && region.hasAttribute("data-live-interval")) {
        schedule(region);
      }
    });
  });
})();
