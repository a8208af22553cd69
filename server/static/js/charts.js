// Charts on pages: each element with data-chart holds the chart's data as JSON and, inside, the server-drawn
// SVG of the same chart. With ECharts loaded, the SVG is replaced by an interactive chart; without
// JavaScript (or on paper) the SVG stays.
(function () {
  "use strict";

  function barOption(data) {
    return {
      title: { text: data.title || "", left: 0, textStyle: { fontSize: 14 } },
      grid: { left: 150, right: 40, top: data.title ? 36 : 10, bottom: 10 },
      xAxis: { type: "value", max: data.top || 100 },
      yAxis: { type: "category", inverse: true, data: data.bars.map(function (b) { return b.label; }) },
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
      legend: { right: 0 },
      tooltip: { trigger: "axis" },
      grid: { left: 40, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: data.labels },
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
      box.style.height = Math.max(220, 40 + rows * 28) + "px";
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
