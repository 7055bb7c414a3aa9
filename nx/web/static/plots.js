// Pictures drawn with Plotly (served by nx itself from the plotly package: no CDN). SVG traces
// only: WebGL is missing on many remote and headless machines, and the scatter holds <= 5,000 points.
(function () {
  "use strict";
  if (typeof Plotly === "undefined") return;
  function data(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  // Plotly reads a few HTML tags in labels: show text as text.
  function plain(text) { return String(text == null ? "" : text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  var config = {displaylogo: false, responsive: true};
  var font = {family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 13};

  var stats = data("layer-data"), layerPlot = document.getElementById("layer-plot");
  if (stats && layerPlot) {
    var layers = stats.map(function (r) { return r.layer; });
    var box = {
      type: "box", name: "score", x: layers, marker: {color: "#16803c"}, line: {width: 1},
      q1: stats.map(function (r) { return r.p25; }), median: stats.map(function (r) { return r.median; }),
      q3: stats.map(function (r) { return r.p75; }), lowerfence: stats.map(function (r) { return r.p10; }),
      upperfence: stats.map(function (r) { return r.p90; }), hoverinfo: "x+y"
    };
    // The mean as a marker: Plotly's boxmean line is drawn half-width when the mean lies outside the box.
    var mean = {
      type: "scatter", mode: "markers", name: "mean", x: layers, y: stats.map(function (r) { return r.mean_score; }),
      marker: {symbol: "diamond", size: 8, color: "#0d1117"}, hovertemplate: "layer %{x}: mean %{y:.3f}<extra></extra>"
    };
    var share = {
      type: "scatter", mode: "lines+markers", name: "share > " + layerPlot.dataset.threshold, yaxis: "y2",
      x: layers, y: stats.map(function (r) { return r.share_above; }), line: {color: "#2563eb"},
      hovertemplate: "layer %{x}: %{y:.1%}<extra></extra>"
    };
    Plotly.newPlot(layerPlot, [box, mean, share], {
      font: font, margin: {t: 10, r: 60, b: 40, l: 50}, showlegend: true, legend: {orientation: "h", y: 1.1, entrywidth: 110},
      xaxis: {title: {text: "layer"}, dtick: layers.length > 24 ? 4 : 1},
      yaxis: {title: {text: "score (ev-correlation)"}, zeroline: false},
      yaxis2: {title: {text: "share"}, overlaying: "y", side: "right", range: [0, 1.05], autorange: false, tickmode: "array",
               tickvals: [0, 0.25, 0.5, 0.75, 1], tickformat: ".0%", showgrid: false}
    }, config);
    layerPlot.on("plotly_click", function (event) {
      var layer = event.points && event.points[0] && event.points[0].x;
      if (layer !== undefined) window.location.href = "/search?layer_min=" + layer + "&layer_max=" + layer;
    });
  }

  var cmp = data("compare-data"), cmpPlot = document.getElementById("compare-plot");
  if (cmp && cmpPlot) {
    var p = cmp.points, labels = p.layer.map(function (l, i) { return l + "/" + p.neuron[i]; });
    Plotly.newPlot(cmpPlot, [{
      type: "scatter", mode: "markers", x: p.score_a, y: p.score_b, text: labels,
      marker: {size: 7, color: "#2563eb", opacity: 0.6},
      hovertemplate: "neuron %{text}<br>" + plain(cmp.a) + ": %{x:.3f}<br>" + plain(cmp.b) + ": %{y:.3f}<extra></extra>"
    }, {type: "scatter", mode: "lines", x: [-1, 1], y: [-1, 1], line: {color: "#8c959f", dash: "dot"}, hoverinfo: "skip", showlegend: false}], {
      font: font, margin: {t: 10, r: 10, b: 50, l: 60}, showlegend: false,
      xaxis: {title: {text: "score in " + plain(cmp.a)}, range: [-0.25, 1.02]},
      yaxis: {title: {text: "score in " + plain(cmp.b)}, range: [-0.25, 1.02]}
    }, config);
    cmpPlot.on("plotly_click", function (event) {
      var pt = event.points && event.points[0];
      if (pt) window.location.href = "/neuron/" + p.layer[pt.pointIndex] + "/" + p.neuron[pt.pointIndex];
    });
  }
})();
