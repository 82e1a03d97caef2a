/* sweepd dashboard pages: fetch the JSON once, then follow the live feed (server-sent events)
 * and redraw from the runs kept here. Every user-controlled string reaches the document
 * through textContent (cell(), text()), never through innerHTML.
 */
"use strict";

(function () {
  var F = SweepFigures;
  var body = document.body;
  var page = body.getAttribute("data-page");
  var ident = body.getAttribute("data-id");
  var csrfMeta = document.querySelector('meta[name="sweepd-csrf"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  // Redraws are gathered into one per this many ms: a burst of updates costs one redraw.
  var REDRAW_MS = 50;
  // The runs table shows this many rows; sorting and filtering pick which.
  var TABLE_ROWS = 500;
  var PLOT_CONFIG = { displaylogo: false, responsive: true };

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(5).replace(/\.?0+(e|$)/, "$1");
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("logged out"); }
      return r.json().then(function (doc) { if (!r.ok) throw new Error(doc.error || r.statusText); return doc; });
    });
  }
  function draw(id, fig) {
    var node = $(id);
    if (node) Plotly.react(node, fig.data, fig.layout, PLOT_CONFIG);
  }
  function setLive(on) {
    var live = $("live");
    live.textContent = on ? "● live" : "○ reconnecting…";
    live.className = on ? "live on" : "live";
  }
  function follow(url, handlers) {
    var source = new EventSource(url, { withCredentials: true });
    source.onopen = function () { setLive(true); };
    source.onerror = function () { setLive(false); };
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (e) { handlers[name](JSON.parse(e.data)); });
    });
    return source;
  }

  /* ---- sweep page ---------------------------------------------------------------------- */

  function sweepPage() {
    var sweep = null;
    var runs = {};            // id -> run row
    var curves = {};          // id -> [[step, value]]
    var sortKey = "number", sortDesc = false;
    var pending = null;
    var lastFinished = -1;
    var importanceTimer = null;

    function runList() { return Object.keys(runs).map(function (k) { return runs[k]; }); }

    function renderSummary() {
      $("title").textContent = "Sweep " + sweep.id + (sweep.name ? " · " + sweep.name : "");
      var facts = $("facts");
      clear(facts);
      var progress = sweep.planned ? sweep.ended + " / " + sweep.planned : String(sweep.ended);
      var counts = Object.keys(sweep.counts).sort().map(function (k) { return k.toLowerCase() + " " + sweep.counts[k]; }).join(", ");
      var best = sweep.best ? fmt(sweep.best.value) + " (run " + sweep.best.run_id + ")" : "–";
      [["State", sweep.state + (sweep.state_reason ? " (" + sweep.state_reason + ")" : "")],
       ["Method", sweep.method], ["Metric", sweep.metric ? sweep.metric + " (" + sweep.goal + ")" : "–"],
       ["Progress", progress + " runs ended"], ["Runs", counts || "none yet"], ["Best so far", best],
       ["Created", when(sweep.created_at)]].forEach(function (pair) {
        facts.appendChild(el("dt", pair[0]));
        var dd = el("dd", pair[1]);
        if (pair[0] === "Best so far" && sweep.best) {
          clear(dd);
          dd.appendChild(el("span", fmt(sweep.best.value) + " "));
          var a = el("a", "run " + sweep.best.run_id);
          a.href = "/runs/" + encodeURIComponent(sweep.best.run_id);
          dd.appendChild(a);
        }
        dd.id = "fact-" + pair[0].toLowerCase().replace(/ /g, "-");
        facts.appendChild(dd);
      });
    }

    function metricNames(list) {
      var seen = {};
      list.forEach(function (r) { Object.keys(r.metrics).forEach(function (k) { seen[k] = 1; }); });
      var names = Object.keys(seen).sort();
      if (sweep.metric && seen[sweep.metric]) names = [sweep.metric].concat(names.filter(function (n) { return n !== sweep.metric; }));
      return names;
    }

    function renderTable() {
      var list = runList();
      var params = F.paramNames(sweep, list);
      var metrics = metricNames(list);
      var columns = [{ key: "number", label: "#", get: function (r) { return r.number; } },
                     { key: "id", label: "run", get: function (r) { return r.id; } },
                     { key: "state", label: "state", get: function (r) { return r.state; } }];
      params.forEach(function (p) { columns.push({ key: "p:" + p, label: p, get: function (r) { return r.params[p]; } }); });
      metrics.forEach(function (m) { columns.push({ key: "m:" + m, label: m, get: function (r) { return r.metrics[m]; }, num: true }); });
      columns.push({ key: "reason", label: "reason", get: function (r) { return r.reason; } });

      var filter = $("state-filter");
      var states = Object.keys(sweep.counts).sort();
      var have = Array.prototype.map.call(filter.options, function (o) { return o.value; });
      states.forEach(function (s) { if (have.indexOf(s) < 0) { var o = el("option", s); o.value = s; filter.appendChild(o); } });
      var wanted = filter.value;
      if (wanted) list = list.filter(function (r) { return r.state === wanted; });

      var col = columns.filter(function (c) { return c.key === sortKey; })[0] || columns[0];
      list.sort(function (a, b) {
        var x = col.get(a), y = col.get(b);
        if (x === undefined || x === null) return 1;   // runs without the value last, either way
        if (y === undefined || y === null) return -1;
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return sortDesc ? -c : c;
      });

      var table = $("runs");
      var thead = table.tHead, tbody = table.tBodies[0];
      clear(thead); clear(tbody);
      var hr = thead.insertRow();
      columns.forEach(function (c) {
        var th = el("th", c.label, "sortable" + (c.key === sortKey ? (sortDesc ? " sorted-desc" : " sorted-asc") : ""));
        th.setAttribute("data-key", c.key);
        th.addEventListener("click", function () {
          if (sortKey === c.key) sortDesc = !sortDesc; else { sortKey = c.key; sortDesc = false; }
          renderTable();
        });
        hr.appendChild(th);
      });
      list.slice(0, TABLE_ROWS).forEach(function (r) {
        var tr = tbody.insertRow();
        tr.setAttribute("data-run", r.id);
        columns.forEach(function (c) {
          var td = tr.insertCell();
          var v = c.get(r);
          if (c.key === "id") {
            var a = el("a", v); a.href = "/runs/" + encodeURIComponent(r.id); td.appendChild(a);
          } else {
            td.textContent = fmt(v);
          }
          if (c.key === "state") td.className = "state-" + r.state;
          if (c.num || typeof v === "number") td.className += " num";
        });
      });
      var note = $("runs-note");
      if (!note) { note = el("p", "", ""); note.id = "runs-note"; table.parentNode.appendChild(note); }
      note.textContent = list.length > TABLE_ROWS ? "Showing " + TABLE_ROWS + " of " + list.length + " runs; sort or filter to see others." : "";
    }

    /* One figure per task, the cheap ones first: with 10,000 runs the page answers clicks
     * and scrolls between figures instead of freezing until the last one is drawn. */
    function renderFigures(whenDrawn) {
      var list = runList();
      if (!sweep.metric) { if (whenDrawn) whenDrawn(); return; }
      var steps = [
        function () { draw("history", F.history(sweep, list)); if (whenDrawn) whenDrawn(); },
        function () {
          var par = F.parallel(sweep, list);
          draw("parcoords", par);
          $("parcoords").setAttribute("data-lines", String(par.lines));
        },
        function () { draw("curves", F.curves(sweep, list, curves)); },
      ];
      F.paramNames(sweep, list).forEach(function (name, i) {
        steps.push(function () {
          var id = "slice-" + i;
          if (!$(id)) { var div = el("div"); div.id = id; $("slices").appendChild(div); }
          draw(id, F.slice(sweep, list, name));
        });
      });
      (function next() {
        var step = steps.shift();
        if (step) { step(); setTimeout(next, 0); }
      })();
      var nFinished = F.finished(sweep, list).length;
      if (nFinished !== lastFinished) {
        var first = lastFinished < 0;
        lastFinished = nFinished;
        // The forest and GP behind importance take a while: asked again only once the
        // finished runs have settled for a moment.
        clearTimeout(importanceTimer);
        importanceTimer = setTimeout(loadImportance, first ? 0 : 1500);
      }
    }

    function loadImportance() {
      getJSON("/api/sweeps/" + encodeURIComponent(sweep.id) + "/importance").then(function (doc) {
        draw("importance", F.importance(doc));
        var table = $("importance-table");
        clear(table);
        if (doc.params.length) {
          var hr = table.insertRow();
          ["parameter", "importance", "± spread", "correlation (Spearman)"].forEach(function (h) { hr.appendChild(el("th", h)); });
        }
        doc.params.forEach(function (p) {
          var tr = table.insertRow();
          [p.param, fmt(p.importance), fmt(p.importance_std), fmt(p.correlation)].forEach(function (v) { tr.insertCell().textContent = v; });
          (p.by_value || []).forEach(function (v) {
            var sub = table.insertRow();
            [" = " + v.value, "", v.runs + " runs", fmt(v.correlation)].forEach(function (x) { sub.insertCell().textContent = x; });
          });
        });
        var notes = (doc.notices || []).slice();
        if (doc.runs_used) notes.unshift("From " + doc.runs_used + " finished runs; model " + doc.model + " (held-out R² " + fmt(doc.model_r2) + ").");
        $("importance-notes").textContent = notes.join(" ");
      }).catch(function (e) { $("importance-notes").textContent = String(e.message || e); });
    }

    function schedule() {
      if (pending !== null) return;
      pending = setTimeout(function () {
        pending = null;
        renderSummary(); renderTable();
        // The figures after the table is painted: a changed run shows at once.
        setTimeout(function () { renderFigures(); }, 0);
      }, REDRAW_MS);
    }

    function loadCurves(ids) {
      var url = "/api/sweeps/" + encodeURIComponent(sweep.id) + "/curves" + (ids ? "?runs=" + ids.map(encodeURIComponent).join(",") : "");
      return getJSON(url).then(function (doc) {
        Object.keys(doc.curves).forEach(function (id) { curves[id] = doc.curves[id]; });
        schedule();
      });
    }

    $("state-filter").addEventListener("change", renderTable);
    $("report-link").href = "/api/sweeps/" + encodeURIComponent(ident) + "/report";
    Array.prototype.forEach.call(document.querySelectorAll("#controls button"), function (b) {
      b.addEventListener("click", function () {
        var action = b.getAttribute("data-action");
        fetch("/api/sweeps/" + encodeURIComponent(ident) + "/" + action,
              { method: "POST", credentials: "same-origin", headers: { "X-Sweepd-CSRF": csrf } })
          .then(function (r) { return r.json().then(function (doc) { return [r, doc]; }); })
          .then(function (pair) {
            $("action-msg").textContent = pair[0].ok ? action + ": done" : (pair[1].error || pair[0].statusText);
            if (pair[0].ok) { sweep = pair[1].sweep; schedule(); }
          });
      });
    });

    getJSON("/api/sweeps/" + encodeURIComponent(ident)).then(function (doc) {
      sweep = doc.sweep;
      doc.runs.forEach(function (r) { runs[r.id] = r; });
      renderSummary(); renderTable();
      // When the page became usable, in ms since navigation (tests and the benchmark read it).
      renderFigures(function () { body.setAttribute("data-loaded", String(Math.round(performance.now()))); });
      loadCurves(null);
      var changed = {};
      var curveTimer = null;
      follow("/api/sweeps/" + encodeURIComponent(ident) + "/live", {
        sweep: function (msg) { sweep = msg.sweep; schedule(); },
        runs: function (msg) {
          msg.runs.forEach(function (r) {
            runs[r.id] = r;
            if (r.started_at) changed[r.id] = 1;
          });
          schedule();
          // Only the curves of the runs that changed are fetched again.
          if (curveTimer === null) {
            curveTimer = setTimeout(function () {
              curveTimer = null;
              var ids = Object.keys(changed); changed = {};
              if (ids.length) loadCurves(ids);
            }, 1000);
          }
        },
      });
    }).catch(function (e) { $("title").textContent = String(e.message || e); });
  }

  /* ---- run page ------------------------------------------------------------------------ */

  function runPage() {
    var history = {};
    var run = null;

    function table(id, rows) {
      var t = $(id);
      clear(t);
      rows.forEach(function (row) {
        var tr = t.insertRow();
        row.forEach(function (v, i) { var td = (i === 0 ? tr.appendChild(el("th", v)) : tr.insertCell()); if (i) td.textContent = fmt(v); });
      });
    }

    function render(events) {
      $("title").textContent = "Run " + run.id + " · " + run.state;
      var back = $("sweep-link");
      if (!back) {
        back = el("a", "← sweep " + run.id.replace(/-\d+$/, ""));
        back.id = "sweep-link";
        back.href = "/sweeps/" + encodeURIComponent(run.id.replace(/-\d+$/, ""));
        $("title").parentNode.insertBefore(back, $("title"));
      }
      table("params", Object.keys(run.params).sort().map(function (k) { return [k, run.params[k]]; }));
      table("summary-table", [["state", run.state], ["attempt", run.attempt], ["worker", run.worker_id],
                              ["started", when(run.started_at)], ["ended", when(run.ended_at)], ["reason", run.reason]]
        .concat(Object.keys(run.metrics).sort().map(function (k) { return [k, run.metrics[k]]; })));
      $("stop").textContent = run.stop
        ? (run.stop.rule ? run.stop.rule + ": " : "") + (run.stop.reason || "") +
          (run.stop.value !== undefined && run.stop.value !== null ? " (value " + fmt(run.stop.value) + ", threshold " + fmt(run.stop.threshold) + ")" : "")
        : "Not stopped by the coordinator.";
      if (events) {
        table("events", events.map(function (e) {
          return [when(e.time), e.state + " (attempt " + e.attempt + ")", e.reason || "", e.worker_id || ""];
        }));
      }
      var box = $("metrics");
      Object.keys(history).sort().forEach(function (name, i) {
        var id = "metric-" + i;
        if (!$(id)) { var div = el("div", null, "plot"); div.id = id; box.appendChild(div); }
        draw(id, F.runMetric(name, history[name], run.stop));
      });
    }

    function merge(curves) {
      Object.keys(curves).forEach(function (k) { history[k] = (history[k] || []).concat(curves[k]); });
    }

    getJSON("/api/runs/" + encodeURIComponent(ident)).then(function (doc) {
      run = doc.run;
      merge(doc.history);
      $("log").textContent = doc.log;
      render(doc.events);
      body.setAttribute("data-loaded", "1");
      follow("/api/runs/" + encodeURIComponent(ident) + "/live?from=" + doc.next_index + "&log=" + doc.log_offset, {
        run: function (msg) {
          if (msg.run) run = msg.run;
          if (msg.history) merge(msg.history);
          if (msg.log) {
            var pre = $("log");
            var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.appendChild(document.createTextNode(msg.log));
            if (stick) pre.scrollTop = pre.scrollHeight;
          }
          render(msg.events);
        },
      });
    }).catch(function (e) { $("title").textContent = String(e.message || e); });
  }

  /* ---- sweeps page: server-rendered, its rows kept current from the live feed ---------- */

  function sweepsPage() {
    var tbody = document.querySelector("#sweeps tbody");
    function age(seconds) {
      seconds = Math.max(seconds, 0);
      var units = [["d", 86400], ["h", 3600], ["m", 60]];
      for (var i = 0; i < units.length; i++) if (seconds >= units[i][1]) return Math.round(seconds / units[i][1]) + units[i][0];
      return Math.round(seconds) + "s";
    }
    follow("/api/sweeps/live", {
      sweeps: function (msg) {
        msg.sweeps.forEach(function (s) {
          var row = tbody.querySelector('tr[data-sweep="' + CSS.escape(s.id) + '"]');
          if (!row) {
            row = document.createElement("tr");
            row.setAttribute("data-sweep", s.id);
            tbody.insertBefore(row, tbody.firstChild);
            var none = $("no-sweeps");
            if (none) none.parentNode.removeChild(none);
          }
          clear(row);
          var link = el("a", s.id);
          link.href = "/sweeps/" + encodeURIComponent(s.id);
          row.insertCell().appendChild(link);
          [s.name, s.state, s.method, s.planned ? s.ended + " / " + s.planned : String(s.ended),
           s.best && s.best.value !== null ? s.metric + " = " + fmt(s.best.value) : "–",
           age(msg.now - s.created_at)].forEach(function (v) { row.insertCell().textContent = v; });
        });
      },
    });
  }

  if (page === "sweeps") sweepsPage();
  else if (page === "sweep") sweepPage();
  else if (page === "run") runPage();
})();
