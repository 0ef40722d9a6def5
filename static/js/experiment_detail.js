// Experiment page: poll the data endpoint and update charts, arms table and history in place
// (Plotly.react), show how fresh the data is, warn when someone else changed the experiment,
// and keep every time chart on one time range (zooming one zooms them all).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var CHARTS = ["allocation", "means", "cumulative", "belief", "probability_best", "traffic", "lag"];
  var TIME_CHARTS = ["allocation", "means", "cumulative", "traffic"];
  var lastSuccess = null;
  var timer = null;
  var historyVersion = null;
  var zoom = null; // [start, end] chosen by zooming, applied to every time chart
  var syncing = false;
  var rangeSelect = document.getElementById("range");
  var resetZoom = document.getElementById("reset-zoom");

  function text(tag, value, className) {
    var element = document.createElement(tag);
    element.textContent = value === null || value === undefined ? "—" : String(value);
    if (className) element.className = className;
    return element;
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
  }

  function pct(value) {
    return value === null || value === undefined ? "—" : (100 * value).toFixed(1) + "%";
  }

  function renderArms(state) {
    var body = document.querySelector("#arms tbody");
    body.replaceChildren();
    state.arms.forEach(function (arm) {
      var row = document.createElement("tr");
      row.dataset.position = arm.position;
      row.append(
        text("td", arm.position), text("td", arm.model.name), text("td", arm.model.version),
        text("td", arm.status.replace("_", " ")), text("td", arm.served, "num"), text("td", arm.rewards, "num"),
        text("td", fmt(arm.mean, 4), "num"),
        text("td", arm.lower === null ? "—" : "[" + fmt(arm.lower, 3) + ", " + fmt(arm.upper, 3) + "]", "num"),
        text("td", pct(arm.allocation), "num served-share"), text("td", pct(arm.policy_allocation), "num"),
        text("td", pct(arm.probability_best), "num")
      );
      body.append(row);
    });
  }

  function refreshHistory(version) {
    var list = document.querySelector("#history-cards .history");
    var onFirstPage = !list || list.dataset.historyPage === "1";
    if (historyVersion === null) { historyVersion = version; return; }
    if (version === historyVersion || !onFirstPage) return;
    historyVersion = version;
    fetch(config.historyUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) document.getElementById("history-cards").innerHTML = html; });
  }

  function showChanged(data) {
    if (data.control_version === config.controlVersion) return;
    var banner = document.getElementById("changed");
    var last = data.last_change;
    document.getElementById("changed-what").textContent = last ? last.summary + " — " + last.actor : "control version " + data.control_version;
    banner.hidden = false;
  }

  function applyZoom() {
    syncing = true;
    TIME_CHARTS.forEach(function (name) {
      var div = document.getElementById("chart-" + name);
      if (!div || !div.data) return;
      Plotly.relayout(div, zoom ? { "xaxis.range": zoom } : { "xaxis.autorange": true });
    });
    syncing = false;
    resetZoom.hidden = zoom === null;
  }

  function watchZoom(name) {
    var div = document.getElementById("chart-" + name);
    if (div.dataset.zoomWatched) return;
    div.dataset.zoomWatched = "1";
    div.on("plotly_relayout", function (event) {
      if (syncing) return;
      if (event["xaxis.range[0]"] !== undefined) {
        zoom = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      } else if (event["xaxis.autorange"]) {
        zoom = null;
      } else {
        return;
      }
      applyZoom();
    });
  }

  function draw(name, figure) {
    var layout = figure.layout;
    if (zoom && TIME_CHARTS.indexOf(name) >= 0) {
      layout = Object.assign({}, layout, { xaxis: Object.assign({}, layout.xaxis, { range: zoom, autorange: false }) });
    }
    Plotly.react("chart-" + name, figure.data, layout, { responsive: true, displaylogo: false });
    if (TIME_CHARTS.indexOf(name) >= 0) watchZoom(name);
  }

  function showFreshness() {
    var updated = document.getElementById("updated");
    var stale = document.getElementById("stale");
    if (lastSuccess === null) return;
    var age = Math.round((Date.now() - lastSuccess) / 1000);
    updated.textContent = "updated " + age + " s ago";
    stale.hidden = age < config.staleSeconds;
  }

  function refresh() {
    var url = config.dataUrl + "?range=" + encodeURIComponent(rangeSelect.value);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("server answered " + response.status);
        return response.json();
      })
      .then(function (data) {
        CHARTS.forEach(function (name) { draw(name, data.figures[name]); });
        renderArms(data.state);
        refreshHistory(data.history_version);
        showChanged(data);
        document.getElementById("empty").hidden = data.has_data;
        document.getElementById("error").hidden = true;
        document.body.dataset.policyVersion = data.state.policy_version;
        document.body.dataset.controlVersion = data.control_version;
        lastSuccess = Date.now();
        showFreshness();
      })
      .catch(function (error) {
        var banner = document.getElementById("error");
        banner.textContent = "Could not refresh the data (" + error.message + "); retrying.";
        banner.hidden = false;
        showFreshness();
      })
      .finally(function () {
        timer = window.setTimeout(refresh, config.refreshSeconds * 1000);
      });
  }

  rangeSelect.addEventListener("change", function () {
    zoom = null;
    resetZoom.hidden = true;
    window.clearTimeout(timer);
    refresh();
  });
  resetZoom.addEventListener("click", function () {
    zoom = null;
    applyZoom();
  });
  // What-if panel: draw the latest report's chart; while a report is computed, show its
  // progress from the API and reload the page once it is done.
  function whatIf() {
    var figureData = document.getElementById("counterfactual-figure");
    if (figureData) {
      var figure = JSON.parse(figureData.textContent);
      if (figure) Plotly.react("chart-counterfactual", figure.data, figure.layout, { responsive: true, displaylogo: false });
    }
    var progress = document.getElementById("what-if-progress");
    if (!progress) return;
    function poll() {
      fetch(progress.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (report) {
          if (String(report.id) !== progress.dataset.report) return window.setTimeout(poll, 2000);
          if (report.status === "done" || report.status === "failed") {
            window.location.reload();
            return;
          }
          progress.querySelector(".stage").textContent = report.status + (report.stage ? " — " + report.stage : "");
          progress.querySelector("progress").value = report.progress;
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    poll();
  }

  window.setInterval(showFreshness, 1000);
  refresh();
  whatIf();
})();
