// Experiment form: show only the parameters of the chosen strategy (all are shown without script).
(function () {
  "use strict";
  var select = document.getElementById("id_policy_kind");
  if (!select) return;
  function show() {
    document.querySelectorAll(".params[data-strategy]").forEach(function (block) {
      block.hidden = block.dataset.strategy !== select.value;
    });
  }
  select.addEventListener("change", show);
  show();
})();
