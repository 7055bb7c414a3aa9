// nx neuron viewer: the little JavaScript the pages need (no framework, no build).
(function () {
  "use strict";
  // Header "go to neuron" form.
  var go = document.getElementById("goto");
  if (go) {
    go.addEventListener("submit", function (event) {
      event.preventDefault();
      var layer = go.elements.layer.value.trim(), neuron = go.elements.neuron.value.trim();
      if (!/^\d+$/.test(layer) || !/^\d+$/.test(neuron)) { go.elements.layer.focus(); return; }
      var model = go.dataset.model;
      window.location.href = "/neuron/" + layer + "/" + neuron +
        (model && model !== "gpt2-xl" ? "?model=" + encodeURIComponent(model) : "");
    });
  }
  // The SQL box is a GET form, so a result has an address to bookmark and share. A statement
  // too long for an address (the server reads at most 16 KB of request line) is POSTed instead.
  // Ctrl/Cmd-Enter runs it.
  var sql = document.getElementById("sql-form");
  if (sql) {
    sql.addEventListener("submit", function () {
      sql.method = encodeURIComponent(sql.elements.q.value).length > 8000 ? "post" : "get";
    });
    sql.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sql.requestSubmit(); }
    });
  }
  // Keyboard navigation on a neuron page: [ and ] for neurons, { and } for layers, r for random.
  var keys = {"[": "prev-neuron", "]": "next-neuron", "{": "prev-layer", "}": "next-layer"};
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey) return;
    var link = keys[event.key] && document.getElementById(keys[event.key]);
    if (link) { window.location.href = link.href; }
    else if (event.key === "r" && document.getElementById("random")) { window.location.href = document.getElementById("random").href; }
  });
})();
