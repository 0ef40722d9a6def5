// Overview: draw each experiment's allocation sparkline from the figures in the page.
(function () {
  "use strict";
  var source = document.getElementById("sparklines");
  if (!source || !window.Plotly) return;
  var figures = JSON.parse(source.textContent);
  document.querySelectorAll(".sparkline").forEach(function (element) {
    var figure = figures[element.dataset.slug];
    if (figure) Plotly.newPlot(element, figure.data, figure.layout, { displayModeBar: false, staticPlot: true });
  });
})();
