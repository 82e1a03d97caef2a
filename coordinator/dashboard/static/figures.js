/* sweepd figures: one pure function per view, from the dashboard's JSON to a plotly figure
 * ({data, layout}). The live pages and the offline report draw with the same functions.
 *
 * Plotly reads a few HTML-like tags in its text (<b>, <br>, <a>): every string a user controls
 * goes through esc() first, which turns <, > and & into entities that plotly shows as text.
 */
"use strict";

var SweepFigures = (function () {
  var MISSING = "(missing)";
  // A slice shows an even sample of this many runs. (Scatters stay SVG: WebGL's first
  // draw compiles shaders, 7 s in a software renderer for what SVG draws in 0.4 s.)
  var MANY = 2000;

  function esc(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function metricOf(sweep, run) {
    var v = run.metrics[sweep.metric];
    return isNum(v) ? v : null;
  }

  function better(goal, a, b) { return goal === "maximize" ? a > b : a < b; }

  /* Runs that ran to their end with a value of the sweep metric: the results. */
  function finished(sweep, runs) {
    return runs.filter(function (r) { return r.state === "FINISHED" && metricOf(sweep, r) !== null; });
  }

  /* The parameters to draw: the sweep's searched ones, else every key the runs carry. */
  function paramNames(sweep, runs) {
    var names = sweep.params.filter(function (p) { return p.distribution !== "constant"; })
      .map(function (p) { return p.name; });
    if (names.length) return names;
    var seen = {};
    runs.forEach(function (r) { Object.keys(r.params).forEach(function (k) { seen[k] = 1; }); });
    return Object.keys(seen).sort();
  }

  function specOf(sweep, name) {
    for (var i = 0; i < sweep.params.length; i++) if (sweep.params[i].name === name) return sweep.params[i];
    return null;
  }

  /* A parameter's axis: numeric (log10 where the distribution is logarithmic) or categorical
   * (integer codes with their labels, in the configuration's order). */
  function axisOf(sweep, runs, name) {
    var spec = specOf(sweep, name);
    var values = runs.map(function (r) { return r.params[name]; });
    var numeric = (!spec || !spec.categorical) && values.every(function (v) { return isNum(v); });
    if (numeric) {
      var log = !!(spec && spec.log) && values.every(function (v) { return v > 0; });
      return { name: name, categorical: false, log: log,
               values: values.map(function (v) { return log ? Math.log10(v) : v; }) };
    }
    var labels = [];
    var index = {};
    function add(v) {
      var key = v === undefined ? MISSING : JSON.stringify(v);
      if (!(key in index)) { index[key] = labels.length; labels.push(v === undefined ? MISSING : (typeof v === "string" ? v : JSON.stringify(v))); }
      return index[key];
    }
    if (spec && spec.values) spec.values.forEach(add);
    var codes = values.map(add);
    return { name: name, categorical: true, log: false, values: codes, labels: labels };
  }

  function baseLayout(title) {
    return { margin: { l: 60, r: 20, t: title ? 30 : 10, b: 45 }, title: title ? { text: esc(title), font: { size: 13 } } : undefined,
             paper_bgcolor: "#fff", plot_bgcolor: "#fff", font: { family: "system-ui, sans-serif", size: 12 },
             hovermode: "closest" };
  }

  /* Each finished run's metric by run number, the best so far as a step line, and runs
   * stopped early apart (their value is of a shorter training). */
  function history(sweep, runs) {
    var done = finished(sweep, runs).slice().sort(function (a, b) { return a.number - b.number; });
    var stopped = runs.filter(function (r) { return r.state === "STOPPED" && metricOf(sweep, r) !== null; });
    var best = null;
    var bestX = [], bestY = [];
    done.forEach(function (r) {
      var v = metricOf(sweep, r);
      if (best === null || better(sweep.goal, v, best)) best = v;
      bestX.push(r.number); bestY.push(best);
    });
    function hover(r) { return esc(r.id); }
    var data = [
      { type: "scatter", mode: "markers", name: "finished", x: done.map(function (r) { return r.number; }),
        y: done.map(function (r) { return metricOf(sweep, r); }), text: done.map(hover),
        hovertemplate: "%{text}<br>" + esc(sweep.metric) + " = %{y}<extra></extra>", marker: { color: "#2f6fb3", size: 7 } },
      { type: "scatter", mode: "lines", name: "best so far", x: bestX, y: bestY, line: { shape: "hv", color: "#1e7b34" } },
    ];
    if (stopped.length) {
      data.push({ type: "scatter", mode: "markers", name: "stopped early", x: stopped.map(function (r) { return r.number; }),
                  y: stopped.map(function (r) { return metricOf(sweep, r); }), text: stopped.map(hover),
                  hovertemplate: "%{text} (stopped)<br>%{y}<extra></extra>", marker: { color: "#9aa3ab", symbol: "x", size: 7 } });
    }
    var layout = baseLayout("");
    layout.xaxis = { title: { text: "run" } };
    layout.yaxis = { title: { text: esc(sweep.metric) } };
    layout.legend = { orientation: "h", y: -0.2 };
    return { data: data, layout: layout };
  }

  /* Lines drawn at most: plotly's parcoords draws through WebGL, and past a few thousand lines
   * (on a machine without a GPU) the page stops answering for seconds while it draws. Above
   * this the best half of the lines are the best runs and the other half an even sample of the
   * rest, and the figure says so. */
  var PARCOORDS_MAX_LINES = 2000;

  function drawnLines(sweep, done) {
    if (done.length <= PARCOORDS_MAX_LINES) return done;
    var ranked = done.slice().sort(function (a, b) {
      var x = metricOf(sweep, a), y = metricOf(sweep, b);
      return better(sweep.goal, x, y) ? -1 : better(sweep.goal, y, x) ? 1 : 0;
    });
    var best = PARCOORDS_MAX_LINES / 2;
    var rest = ranked.slice(best);
    var step = rest.length / (PARCOORDS_MAX_LINES - best);
    var sample = [];
    for (var i = 0; i < PARCOORDS_MAX_LINES - best; i++) sample.push(rest[Math.floor(i * step)]);
    return ranked.slice(0, best).concat(sample);
  }

  /* One line per finished run over every parameter and the metric, coloured by the metric
   * (for very large sweeps, the best runs and a sample of the others: see drawnLines). */
  function parallel(sweep, runs) {
    var all = finished(sweep, runs);
    var done = drawnLines(sweep, all);
    var dims = paramNames(sweep, runs).map(function (name) {
      var axis = axisOf(sweep, done, name);
      var dim = { label: esc(axis.log ? "log10(" + name + ")" : name), values: axis.values };
      if (axis.categorical) {
        dim.tickvals = axis.labels.map(function (_, i) { return i; });
        // Parallel coordinates set tick labels as plain text (no entity decoding): no esc().
        dim.ticktext = axis.labels.slice();
        dim.range = [-0.5, Math.max(axis.labels.length - 0.5, 0.5)];
      }
      return dim;
    });
    var metric = done.map(function (r) { return metricOf(sweep, r); });
    dims.push({ label: esc(sweep.metric), values: metric });
    var reverse = sweep.goal === "maximize";
    var data = [{ type: "parcoords", dimensions: dims,
                  line: { color: metric, colorscale: "Viridis", reversescale: !reverse, showscale: true,
                          colorbar: { title: { text: esc(sweep.metric) } } } }];
    var layout = baseLayout("");
    layout.margin = { l: 80, r: 80, t: 50, b: 30 };
    if (done.length < all.length) {
      layout.title = { text: esc("the best " + PARCOORDS_MAX_LINES / 2 + " and " +
                                 (done.length - PARCOORDS_MAX_LINES / 2) + " others of " + all.length +
                                 " finished runs"), font: { size: 12 } };
    }
    return { data: data, layout: layout, lines: done.length, total: all.length };
  }

  /* Importance with its spread across repeats, and the Spearman correlation as hover. */
  function importance(doc) {
    var params = (doc.params || []).slice().sort(function (a, b) { return a.importance - b.importance; });
    var data = [{ type: "bar", orientation: "h", x: params.map(function (p) { return p.importance; }),
                  y: params.map(function (p) { return esc(p.param); }),
                  error_x: { type: "data", array: params.map(function (p) { return p.importance_std || 0; }), visible: true },
                  text: params.map(function (p) { return p.correlation === null ? "" : "ρ " + p.correlation.toFixed(2); }),
                  textposition: "outside", marker: { color: "#2f6fb3" },
                  hovertemplate: "%{y}: %{x:.3f}<extra></extra>" }];
    var layout = baseLayout("");
    layout.margin.l = 120;
    layout.xaxis = { title: { text: "importance (held-out permutation)" }, rangemode: "tozero" };
    return { data: data, layout: layout };
  }

  /* The sweep metric over steps per run; where a run was stopped early, an x at its last
   * point, with the rule's reason on hover. */
  function curves(sweep, runs, curvesByRun) {
    var byId = {};
    runs.forEach(function (r) { byId[r.id] = r; });
    var data = [];
    var stopX = [], stopY = [], stopText = [];
    Object.keys(curvesByRun).forEach(function (id) {
      var points = curvesByRun[id];
      var run = byId[id];
      if (!points.length || !run) return;
      data.push({ type: "scatter", mode: "lines", name: esc(id), showlegend: false,
                  x: points.map(function (p) { return p[0]; }), y: points.map(function (p) { return p[1]; }),
                  line: { width: 1, color: run.stop ? "#9aa3ab" : (run.state === "FINISHED" ? "#2f6fb3" : "#e39b2d") },
                  hovertemplate: esc(id) + " step %{x}: %{y}<extra></extra>" });
      if (run.stop) {
        var last = points[points.length - 1];
        stopX.push(last[0]); stopY.push(last[1]);
        stopText.push(esc(id + ": " + (run.stop.reason || run.stop.rule || "stopped")));
      }
    });
    if (stopX.length) {
      data.push({ type: "scatter", mode: "markers", name: "stopped early", x: stopX, y: stopY, text: stopText,
                  marker: { symbol: "x", size: 9, color: "#b3261e" }, hovertemplate: "%{text}<extra></extra>" });
    }
    var layout = baseLayout("");
    layout.xaxis = { title: { text: "step" } };
    layout.yaxis = { title: { text: esc(sweep.metric) } };
    return { data: data, layout: layout };
  }

  /* The metric against one parameter, finished runs only. */
  function slice(sweep, runs, name) {
    var all = finished(sweep, runs);
    var done = all;
    if (all.length > MANY) {
      var stride = all.length / MANY;
      done = [];
      for (var i = 0; i < MANY; i++) done.push(all[Math.floor(i * stride)]);
    }
    var axis = axisOf(sweep, done, name);
    var layout = baseLayout(done.length < all.length ? name + " (" + done.length + " of " + all.length + " runs)" : name);
    layout.margin = { l: 55, r: 10, t: 30, b: 40 };
    layout.yaxis = { title: { text: esc(sweep.metric) } };
    var x = done.map(function (r) { return r.params[name]; });
    if (axis.categorical) {
      x = axis.values;
      layout.xaxis = { tickvals: axis.labels.map(function (_, i) { return i; }), ticktext: axis.labels.map(esc) };
    } else {
      layout.xaxis = { type: axis.log ? "log" : "linear" };
    }
    return { data: [{ type: "scatter", mode: "markers", x: x, y: done.map(function (r) { return metricOf(sweep, r); }),
                      text: done.map(function (r) { return esc(r.id); }), marker: { size: 6, color: "#2f6fb3", opacity: 0.7 },
                      hovertemplate: "%{text}: %{y}<extra></extra>" }], layout: layout };
  }

  /* Every metric of one run over steps (run page), one figure per metric. */
  function runMetric(name, points, stop) {
    var data = [{ type: "scatter", mode: "lines+markers", x: points.map(function (p) { return p[0]; }),
                  y: points.map(function (p) { return p[1]; }), marker: { size: 4 }, line: { color: "#2f6fb3" } }];
    if (stop && points.length) {
      var last = points[points.length - 1];
      data.push({ type: "scatter", mode: "markers", x: [last[0]], y: [last[1]], name: "stopped",
                  marker: { symbol: "x", size: 11, color: "#b3261e" }, text: [esc(stop.reason || "stopped")],
                  hovertemplate: "%{text}<extra></extra>" });
    }
    var layout = baseLayout(name);
    layout.showlegend = false;
    layout.xaxis = { title: { text: "step" } };
    return { data: data, layout: layout };
  }

  return { esc: esc, finished: finished, paramNames: paramNames, metricOf: metricOf, history: history,
           parallel: parallel, importance: importance, curves: curves, slice: slice, runMetric: runMetric };
})();
