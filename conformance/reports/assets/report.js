// Filters for the conformance report: by status, required only, and free text. No network, no libraries.
(function () {
  "use strict";
  var tests = Array.prototype.slice.call(document.querySelectorAll("details.test"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("section.group"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll("nav.filters button[data-status]"));
  var state = { status: "all", required: false, q: "" };

  function apply() {
    var shown = 0;
    tests.forEach(function (t) {
      var ok = (state.status === "all" || t.dataset.status === state.status) &&
        (!state.required || t.dataset.required === "true") &&
        (!state.q || t.dataset.text.indexOf(state.q) !== -1);
      t.hidden = !ok;
      if (ok) { shown += 1; }
    });
    groups.forEach(function (g) { g.hidden = !g.querySelector("details.test:not([hidden])"); });
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.status === state.status)); });
    document.getElementById("shown").textContent = shown + " of " + tests.length + " tests shown";
  }

  function setStatus(status) {
    state.status = status;
    apply();
  }

  buttons.forEach(function (b) { b.addEventListener("click", function () { setStatus(b.dataset.status); }); });
  Array.prototype.slice.call(document.querySelectorAll("[data-filter]")).forEach(function (el) {
    el.addEventListener("click", function () { setStatus(el.getAttribute("data-filter")); });
  });
  document.getElementById("required-only").addEventListener("change", function (e) {
    state.required = e.target.checked;
    apply();
  });
  document.getElementById("q").addEventListener("input", function (e) {
    state.q = e.target.value.trim().toLowerCase();
    apply();
  });
  document.getElementById("expand").addEventListener("click", function () {
    var open = tests.some(function (t) { return !t.hidden && !t.open; });
    tests.forEach(function (t) { if (!t.hidden) { t.open = open; } });
  });
  var wanted = window.location.hash.replace("#", "");
  if (["pass", "fail", "skip", "error"].indexOf(wanted) !== -1) { state.status = wanted; }
  apply();
  document.documentElement.setAttribute("data-ready", "true");
}());
