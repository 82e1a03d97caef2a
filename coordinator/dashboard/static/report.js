/* sweepd report: the sweep page's figures and tables drawn once from the data embedded in the
 * file (no server, no network). Same figure functions as the live page (figures.js); every
 * user-controlled string goes in through textContent.
 */
"use strict";

(function () {
  var F = SweepFigures;
  var doc = JSON.parse(document.getElementById("sweepd-data").textContent);
  var sweep = doc.sweep, runs = doc.runs;
  var CONFIG = { displaylogo: false, responsive: true };

  function $(id) { return document.getElementById(id); }
  function el(tag, text) { var n = document.createElement(tag); if (text !== undefined) n.textContent = String(text); return n; }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(5).replace(/\.?0+(e|$)/, "$1");
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : ""; }
  function draw(id, fig) { Plotly.newPlot($(id), fig.data, fig.layout, CONFIG); }

  $("title").textContent = "Sweep " + sweep.id + (sweep.name ? " · " + sweep.name : "");
  var facts = $("facts");
  var counts = Object.keys(sweep.counts).sort().map(function (k) { return k.toLowerCase() + " " + sweep.counts[k]; }).join(", ");
  [["State", sweep.state + (sweep.state_reason ? " (" + sweep.state_reason + ")" : "")], ["Method", sweep.method],
   ["Metric", sweep.metric ? sweep.metric + " (" + sweep.goal + ")" : "–"],
   ["Progress", (sweep.planned ? sweep.ended + " / " + sweep.planned : sweep.ended) + " runs ended"],
   ["Runs", counts || "none"], ["Best", sweep.best ? fmt(sweep.best.value) + " (run " + sweep.best.run_id + ")" : "–"],
   ["Created", when(sweep.created_at)], ["Report written", when(doc.generated_at)]].forEach(function (p) {
    facts.appendChild(el("dt", p[0])); facts.appendChild(el("dd", p[1]));
  });

  if (sweep.metric) {
    draw("history", F.history(sweep, runs));
    var par = F.parallel(sweep, runs);
    draw("parcoords", par);
    draw("curves", F.curves(sweep, runs, doc.curves));
    F.paramNames(sweep, runs).forEach(function (name, i) {
      var div = el("div"); div.id = "slice-" + i; $("slices").appendChild(div);
      draw(div.id, F.slice(sweep, runs, name));
    });
  }
  var imp = doc.importance;
  if (imp.params.length) draw("importance", F.importance(imp));
  var it = $("importance-table");
  if (imp.params.length) {
    var hr = it.insertRow();
    ["parameter", "importance", "± spread", "correlation (Spearman)"].forEach(function (h) { hr.appendChild(el("th", h)); });
  }
  imp.params.forEach(function (p) {
    var tr = it.insertRow();
    [p.param, fmt(p.importance), fmt(p.importance_std), fmt(p.correlation)].forEach(function (v) { tr.insertCell().textContent = v; });
  });
  $("importance-notes").textContent = (imp.notices || []).join(" ");

  var params = F.paramNames(sweep, runs);
  var seen = {};
  runs.forEach(function (r) { Object.keys(r.metrics).forEach(function (k) { seen[k] = 1; }); });
  var metrics = Object.keys(seen).sort();
  var table = $("runs");
  var head = table.tHead.insertRow();
  ["#", "run", "state"].concat(params, metrics, ["reason"]).forEach(function (h) { head.appendChild(el("th", h)); });
  var tbody = table.tBodies[0];
  runs.forEach(function (r) {
    var tr = tbody.insertRow();
    [r.number, r.id, r.state].concat(params.map(function (p) { return fmt(r.params[p]); }),
                                     metrics.map(function (m) { return fmt(r.metrics[m]); }), [r.reason])
      .forEach(function (v) { tr.insertCell().textContent = v; });
  });
  document.body.setAttribute("data-loaded", "1");
})();
