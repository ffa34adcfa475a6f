// The playbook editor (templates/web/playbooks/edit.html.j2), enhanced: as the person types, the form is
// posted to /playbooks/validate (nothing is saved) and each problem is shown next to its field, as the
// server shows them after a save; items can also be dragged to a new place within their checklist.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  if (!form || !window.fetch || !window.URLSearchParams) { return; }
  var summary = document.getElementById("problems");
  var url = form.getAttribute("data-validate");
  var playbook = form.getAttribute("data-playbook") || "";
  var timer = null;
  var sent = 0;

  function box(name) {
    return document.getElementById("e-" + (name || "form"));
  }

  function show(problems) {
    form.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    problems.forEach(function (p) {
      var target = box(p.field) || box("");
      var line = document.createElement("p");
      line.textContent = (target === box("") && p.key ? p.key + ": " : "") + p.message;
      target.appendChild(line);
      var input = document.getElementById("f-" + p.field);
      if (input) { input.setAttribute("aria-invalid", "true"); }
    });
    summary.classList.toggle("has-problems", problems.length > 0);
    summary.textContent = problems.length ? problems.length + (problems.length === 1 ? " problem" : " problems") +
      " to fix before saving." : "No problems found.";
  }

  function check() {
    var body = new URLSearchParams(new FormData(form));
    body.set("playbook", playbook);
    var mine = ++sent;
    fetch(url, { method: "POST", body: body, credentials: "same-origin",
                 headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (answer) { if (mine === sent) { show(answer.problems || []); } })
      .catch(function () { /* the next change tries again; a save checks anyway */ });
  }

  function later() {
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(check, 350);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  // Dragging an item within its checklist: the items are renumbered so the form posts them in the new order.
  var dragged = null;
  function renumber(list) {
    var items = list.querySelectorAll(":scope > li.item");
    items.forEach(function (li, index) {
      var old = li.getAttribute("data-path");
      var now = old.replace(/items\[\d+\]$/, "items[" + (index + 1) + "]");
      if (old === now) { return; }
      li.querySelectorAll("[name]").forEach(function (el) {
        if (el.name.indexOf(old + ".") === 0) { el.name = now + el.name.slice(old.length); }
      });
      li.setAttribute("data-path", now);
    });
  }
  form.querySelectorAll("li.item").forEach(function (li) {
    li.addEventListener("dragstart", function (e) {
      if (e.target !== li) { return; }
      dragged = li;
      li.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", li.getAttribute("data-path"));
    });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); dragged = null; });
    li.addEventListener("dragover", function (e) {
      if (!dragged || dragged === li || dragged.parentNode !== li.parentNode) { return; }
      e.preventDefault();
      var rect = li.getBoundingClientRect();
      var after = e.clientY > rect.top + rect.height / 2;
      li.parentNode.insertBefore(dragged, after ? li.nextSibling : li);
    });
    li.addEventListener("drop", function (e) {
      if (!dragged) { return; }
      e.preventDefault();
      renumber(li.parentNode);
      later();
    });
  });
})();
