"use strict";
// Refreshes a batch's targets from the REST API until every target has ended.
(function () {
  const panel = document.getElementById("rh-batch");
  if (!panel || panel.dataset.finished === "true") return;
  const overall = document.getElementById("rh-batch-status");
  let delay = 500;

  function badge(element, status) {
    element.textContent = status;
    element.className = "rh-badge rh-" + status;
  }

  async function poll() {
    try {
      const response = await fetch(panel.dataset.apiUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error("HTTP " + response.status);
      const batch = await response.json();
      for (const target of batch.targets) {
        const row = panel.querySelector('tr[data-machine="' + CSS.escape(target.machine_id) + '"]');
        if (!row) continue;
        badge(row.querySelector('[data-field="status"]'), target.status);
        row.querySelector('[data-field="exit_code"]').textContent = target.exit_code === null ? "–" : target.exit_code;
        for (const field of ["output", "stderr", "error"]) {
          row.querySelector('[data-field="' + field + '"]').textContent = target[field];
        }
      }
      badge(overall, batch.status);
      delay = 1000;
      if (batch.status !== "running") return;
    } catch (error) {
      delay = Math.min(delay * 2, 5000);
    }
    setTimeout(poll, delay);
  }

  setTimeout(poll, delay);
})();
