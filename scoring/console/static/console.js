// riskflow console: charts (uPlot) and backtest progress. No other script runs on these pages.
"use strict";
(function () {
  var colors = ["#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#1565c0", "#6a1b9a", "#00838f", "#5d4037"];
  function drawCharts() {
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var src = document.getElementById(el.dataset.chart);
      if (!src || typeof uPlot === "undefined") return;
      var d = JSON.parse(src.textContent);
      if (!d.x || d.x.length === 0) { el.textContent = "No data in this range."; el.classList.add("empty"); return; }
      var series = [{}];
      d.names.forEach(function (n, i) { series.push({ label: n, stroke: colors[i % colors.length], width: 2 }); });
      var opts = {
        width: Math.max(320, (el.clientWidth || 568) - 8), height: 240, series: series,
        // Times in UTC, as the range above them and every other time on these pages.
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        scales: {
          // One hour (a 1 h range) is a point in the middle of its hour, not on an axis of years.
          x: { time: true, range: function (u, min, max) { return min === max ? [min - 3600, max + 3600] : [min, max]; } },
          // Counts: the axis starts at 0, so that a line's height is its count.
          y: { range: function (u, min, max) { return uPlot.rangeNum(0, Math.max(max, 1), 0.1, true); } }
        },
        axes: [{}, { size: axisSize }]
      };
      new uPlot(opts, [d.x].concat(d.series), el);
    });
  }
  // axisSize fits the y axis to its longest label (1,200,000 does not fit a fixed width).
  function axisSize(u, values, i, cycle) {
    var axis = u.axes[i];
    if (cycle > 1) return axis._size;
    var longest = (values || []).reduce(function (a, v) { return v.length > a.length ? v : a; }, "");
    u.ctx.font = axis.font[0];
    return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio) + 4;
  }
  function pollJob() {
    var job = document.getElementById("job");
    if (!job || job.dataset.done === "true") return;
    var bar = document.getElementById("bar"), text = document.getElementById("progress-text");
    function tick() {
      fetch("/console/backtests/" + job.dataset.id + "/progress", { credentials: "same-origin" })
        .then(function (r) {
          // The session ended (401) or the run is gone from the node (404): the page itself says
          // so (the login page, "No backtest"). Polling on, the bar stayed frozen for ever.
          if (r.status === 401 || r.status === 404) { window.location.reload(); return null; }
          if (!r.ok) throw new Error("progress: " + r.status);
          return r.json();
        })
        .then(function (p) {
          if (!p) return;
          if (p.done) { window.location.reload(); return; }
          if (bar) bar.style.width = p.percent.toFixed(0) + "%";
          if (text) text.textContent = p.read + " events read, " + p.compared + " compared, " + p.changed + " changed (" + p.percent.toFixed(0) + "%)";
          setTimeout(tick, 500);
        })
        .catch(function () { setTimeout(tick, 2000); });
    }
    if (bar) bar.style.width = bar.dataset.percent + "%";
    setTimeout(tick, 500);
  }
  // The backtest form sends the draft as it is in the editor (and the version it was edited
  // from, and the revision of the saved draft the page showed), not only the one saved by the last lint: an edit made after it would not be backtested.
  function backtestTheEditor() {
    var form = document.getElementById("backtest-form"), editor = document.getElementById("draft");
    var base = document.querySelector("#draft-form input[name=base]");
    var rev = document.querySelector("#draft-form input[name=rev]");
    if (!form || !editor) return;
    function field(name, value) {
      var f = form.querySelector("input[name=" + name + "]");
      if (!f) { f = document.createElement("input"); f.type = "hidden"; f.name = name; form.appendChild(f); }
      f.value = value;
    }
    form.addEventListener("submit", function () {
      field("draft", editor.value);
      if (base) field("base", base.value);
      if (rev) field("rev", rev.value);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); pollJob(); backtestTheEditor(); });
})();
