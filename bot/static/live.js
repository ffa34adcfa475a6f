// A run's page, live: the server's event stream (/runs/{id}/events) says when the run changed; the page
// then fetches its main content again (?part=body) and swaps it in, keeping the scroll position, the
// focused control and any text being typed, and says "Updated" to screen readers.
(function () {
  "use strict";
  var holder = document.getElementById("run-body");
  var status = document.getElementById("live-status");
  if (!holder || !window.EventSource || !window.fetch) { return; }
  var eventsUrl = holder.getAttribute("data-events");
  var bodyUrl = holder.getAttribute("data-body");
  var since = holder.getAttribute("data-version") || "";
  var busy = false;
  var again = false;

  // Where the focus was, said in a way that survives the swap: an id, a button's label, or a form's
  // action and the control's name.
  function keyOf(el) {
    if (!el || el === document.body) { return null; }
    if (el.id) { return { id: el.id }; }
    if (el.getAttribute("aria-label")) { return { label: el.getAttribute("aria-label") }; }
    if (el.form && el.form.getAttribute("action")) {
      return { action: el.form.getAttribute("action"), name: el.name || "", tag: el.tagName };
    }
    return null;
  }

  function find(key) {
    if (!key) { return null; }
    if (key.id) { return document.getElementById(key.id); }
    var all = holder.querySelectorAll("button, input, select, textarea, a");
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (key.label && el.getAttribute("aria-label") === key.label) { return el; }
      if (key.action && el.form && el.form.getAttribute("action") === key.action &&
          el.tagName === key.tag && (el.name || "") === key.name) { return el; }
    }
    return null;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var url = bodyUrl + (window.location.search ? "&" + window.location.search.slice(1) : "");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.text(); })
      .then(function (html) {
        var focused = document.activeElement;
        var key = holder.contains(focused) ? keyOf(focused) : null;
        // Text being written stays: a status update in progress is not thrown away.
        var drafts = {};
        holder.querySelectorAll("textarea[id], input[id]").forEach(function (el) {
          if (el.type !== "hidden" && el.value !== el.defaultValue) { drafts[el.id] = el.value; }
        });
        var x = window.scrollX, y = window.scrollY;
        holder.innerHTML = html;
        Object.keys(drafts).forEach(function (id) {
          var el = document.getElementById(id);
          if (el) { el.value = drafts[id]; }
        });
        var back = find(key);
        if (back) { back.focus({ preventScroll: true }); }
        window.scrollTo(x, y);
        status.textContent = "";
        window.setTimeout(function () { status.textContent = "Updated"; }, 50);
        document.dispatchEvent(new CustomEvent("run-updated"));
      })
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource(eventsUrl + (since ? "?since=" + encodeURIComponent(since) : ""));
  source.addEventListener("change", refresh);
  source.addEventListener("gone", function () { source.close(); });
})();
