"use strict";
// Refreshes a batch's counts and targets until every target has ended: from its stream (commands.streams,
// through live.js), whose "batch" events carry the REST API's batch with only the targets that changed (each
// with its index); or, when that fails, by polling the REST API (the admin session) for the whole batch.
(function () {
  const panel = document.getElementById("rh-batch");
  if (!panel || panel.dataset.finished === "true") return;
  const overall = document.getElementById("rh-batch-status");
  const countList = document.getElementById("rh-batch-counts");
  const rerunItem = document.getElementById("rh-rerun-failed-item");
  const COUNT_LABELS = {failed_runs: "failed runs", not_delivered: "not delivered", total: "total"};
  let delay = 500;

  function badge(element, status) {
    element.textContent = status;
    element.className = "rh-badge rh-" + status;
  }

  function duration(ms) {
    return ms === null || ms === undefined ? "–" : (ms / 1000).toFixed(2) + " s";
  }

  // The same words as the page's first rendering (commands.admin_views.reason).
  function reason(target, stopped) {
    if (target.command_id !== null) return target.error;
    if (target.status === "waiting") return "waiting for a free slot (max concurrency)";
    if (target.status === "awaiting_approval") return "waiting for approval";
    if (stopped) return "not sent: the batch stopped after too many failed runs";
    return "";
  }

  function showCounts(counts) {
    const items = Object.entries(counts).map(([key, value]) => {
      const item = document.createElement("li");
      item.dataset.count = key;
      const label = document.createElement("span");
      label.className = "rh-badge rh-" + key;
      label.textContent = COUNT_LABELS[key] || key;
      const number = document.createElement("b");
      number.dataset.field = "value";
      number.textContent = value;
      item.append(label, " ", number);
      return item;
    });
    countList.replaceChildren(...items);
    if (rerunItem) rerunItem.hidden = !(counts.failed_runs || counts.not_delivered);
  }

  // A target dispatched since the page was drawn: its name becomes a link to its command.
  function link(row, commandId) {
    const name = row.querySelector('[data-field="name"]');
    if (!name || name.tagName === "A") return;
    const anchor = document.createElement("a");
    anchor.dataset.field = "name";
    anchor.href = panel.dataset.commandUrl.replace("{id}", encodeURIComponent(commandId));
    anchor.textContent = name.textContent;
    name.replaceWith(anchor);
  }

  function showTarget(row, target, stopped) {
    badge(row.querySelector('[data-field="status"]'), target.status);
    row.querySelector('[data-field="exit_code"]').textContent = target.exit_code === null ? "–" : target.exit_code;
    row.querySelector('[data-field="duration"]').textContent = duration(target.duration_ms);
    row.querySelector('[data-field="error"]').textContent = reason(target, stopped);
    for (const field of ["output", "stderr"]) {
      row.querySelector('[data-field="' + field + '"]').textContent = target[field];
    }
    if (target.command_id !== null) link(row, target.command_id);
  }

  let live = null;

  // The API's batch, or a batch event; true once every target has ended.
  function showBatch(batch) {
    // Targets come in the batch's order, or carry their index; several may share a machine, so rows go by position.
    batch.targets.forEach((target, position) => {
      const index = target.index === undefined ? position : target.index;
      const row = panel.querySelector('tr[data-index="' + index + '"]');
      if (row) showTarget(row, target, batch.stopped);
    });
    showCounts(batch.counts);
    badge(overall, batch.status);
    const ended = batch.status !== "running" && batch.status !== "awaiting_approval";
    if (ended) {
      panel.dataset.finished = "true";
      if (live) live.close();
    }
    return ended;
  }

  async function poll() {
    try {
      const response = await fetch(panel.dataset.apiUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error("HTTP " + response.status);
      delay = 1000;
      if (showBatch(await response.json())) return;
    } catch (error) {
      delay = Math.min(delay * 2, 5000);
    }
    setTimeout(poll, delay);
  }

  live = window.relayhub.follow({
    element: panel,
    url: panel.dataset.streamUrl,
    handlers: {batch: showBatch},
    poll: () => setTimeout(poll, delay),
  });
})();
