// Charts on pages: each element with data-chart holds the chart's data as JSON and, inside, the server-drawn
// SVG of the same chart. With ECharts loaded, the SVG is replaced by an interactive chart; without
// JavaScript (or on paper) the SVG stays.
(function () {
  "use strict";

  function barOption(data) {
    return {
      title: { text: data.title || "", left: 0, textStyle: { fontSize: 14 } },
      // The grid makes room for the labels, and a long label wraps: a unit's name is never cut.
      grid: { left: 8, right: 48, top: data.title ? 36 : 10, bottom: 10, containLabel: true },
      xAxis: { type: "value", max: data.top || 100 },
      yAxis: { type: "category", inverse: true, data: data.bars.map(function (b) { return b.label; }),
               axisLabel: { width: 180, overflow: "break", interval: 0 } },
      tooltip: { trigger: "axis" },
      series: [{
        type: "bar",
        label: { show: true, position: "right" },
        data: data.bars.map(function (b) { return { value: b.value, itemStyle: { color: b.colour || "#1565c0" } }; })
      }]
    };
  }

  function lineOption(data) {
    return {
      title: { text: data.title || "", left: 0, textStyle: { fontSize: 14 } },
      legend: { bottom: 0 },
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 20, top: 40, bottom: 36, containLabel: true },
      xAxis: { type: "category", data: data.labels, axisLabel: { interval: 0, width: 80, overflow: "break" } },
      yAxis: { type: "value", min: data.low, max: data.high },
      series: data.series.map(function (s) { return { name: s.name, type: "line", data: s.values, connectNulls: false }; })
    };
  }

  function draw() {
    if (!window.echarts) { return; }
    document.querySelectorAll("[data-chart]").forEach(function (box) {
      var data;
      try { data = JSON.parse(box.getAttribute("data-chart")); } catch (e) { return; }
      var rows = data.kind === "bar" ? data.bars.length : 8;
      box.style.height = Math.max(220, 40 + rows * 34) + "px";
      box.innerHTML = "";
      var chart = window.echarts.init(box, null, { renderer: "svg" });
      chart.setOption(data.kind === "bar" ? barOption(data) : lineOption(data));
      window.addEventListener("resize", function () { chart.resize(); });
      box.setAttribute("data-drawn", "echarts");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
