// Experiment detail: poll the data endpoint and update charts, arms table and history
// in place (Plotly.react), show how fresh the data is and warn when it is stale.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var CHARTS = ["allocation", "means", "cumulative", "belief", "probability_best", "traffic", "lag"];
  var lastSuccess = null;
  var timer = null;
  var rangeSelect = document.getElementById("range");

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
        text("td", arm.status), text("td", arm.served, "num"), text("td", arm.rewards, "num"),
        text("td", fmt(arm.mean, 4), "num"),
        text("td", arm.lower === null ? "—" : "[" + fmt(arm.lower, 3) + ", " + fmt(arm.upper, 3) + "]", "num"),
        text("td", pct(arm.allocation), "num"), text("td", pct(arm.probability_best), "num")
      );
      body.append(row);
    });
  }

  function renderTimeline(entries) {
    var list = document.getElementById("timeline");
    list.replaceChildren();
    if (!entries.length) {
      list.append(text("li", "No actions yet.", "muted"));
      return;
    }
    entries.forEach(function (entry) {
      var item = document.createElement("li");
      item.append(text("span", entry.kind, "kind"), text("span", " · " + entry.time + " · " + entry.actor, "muted"));
      if (entry.reason) item.append(text("div", entry.reason));
      var detail = { before: entry.before, after: entry.after, evidence: entry.evidence };
      item.append(text("pre", JSON.stringify(detail, null, 1)));
      list.append(item);
    });
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
        CHARTS.forEach(function (name) {
          var figure = data.figures[name];
          Plotly.react("chart-" + name, figure.data, figure.layout, { responsive: true, displaylogo: false });
        });
        renderArms(data.state);
        renderTimeline(data.timeline);
        document.getElementById("empty").hidden = data.has_data;
        document.getElementById("error").hidden = true;
        document.body.dataset.policyVersion = data.state.policy_version;
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
    window.clearTimeout(timer);
    refresh();
  });
  window.setInterval(showFreshness, 1000);
  refresh();
})();
