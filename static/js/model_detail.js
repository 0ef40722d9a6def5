// Model detail: the version's served share over time in each experiment.
(function () {
  "use strict";
  var source = document.getElementById("served-share");
  if (!source || !window.Plotly) return;
  var figure = JSON.parse(source.textContent);
  Plotly.newPlot("chart-served-share", figure.data, figure.layout, { responsive: true, displaylogo: false });
})();
