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
      var opts = { width: Math.max(320, (el.clientWidth || 568) - 8), height: 240, series: series, axes: [{}, { size: 70 }] };
      new uPlot(opts, [d.x].concat(d.series), el);
    });
  }
  function pollJob() {
    var job = document.getElementById("job");
    if (!job || job.dataset.done === "true") return;
    var bar = document.getElementById("bar"), text = document.getElementById("progress-text");
    function tick() {
      fetch("/console/backtests/" + job.dataset.id + "/progress", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
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
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); pollJob(); });
})();
