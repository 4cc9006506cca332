"use strict";
// Follows a command's output from the REST output endpoint, by offsets, until it ends.
(function () {
  const panel = document.getElementById("rh-live");
  if (!panel || panel.dataset.finished === "true") return;
  const streams = {stdout: document.getElementById("rh-stdout"), stderr: document.getElementById("rh-stderr")};
  const offsets = {stdout: Number(panel.dataset.stdoutOffset), stderr: Number(panel.dataset.stderrOffset)};
  const statusBadge = document.getElementById("rh-status");
  const note = document.getElementById("rh-live-note");
  // Quick while output flows, slower while the command is quiet (the API is rate-limited per operator).
  const FAST_MS = 300, SLOW_MS = 2000;
  let delay = FAST_MS;

  function setStatus(status) {
    statusBadge.textContent = status;
    statusBadge.className = "rh-badge rh-" + status;
  }

  async function getJson(url) {
    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  async function showResult() {
    const command = await getJson(panel.dataset.detailUrl);
    setStatus(command.status);
    document.getElementById("rh-exit-code").textContent = command.exit_code === null ? "–" : command.exit_code;
    document.getElementById("rh-duration").textContent = command.duration_ms === null ? "–" : command.duration_ms + " ms";
    const error = document.getElementById("rh-error");
    error.textContent = command.error;
    error.hidden = !command.error;
    document.getElementById("rh-truncated").hidden = !command.output_truncated;
    const cancel = document.getElementById("rh-cancel-form");
    if (cancel) cancel.parentElement.remove();
    panel.dataset.finished = "true";
  }

  async function poll() {
    try {
      const url = panel.dataset.outputUrl + "?stdout_offset=" + offsets.stdout + "&stderr_offset=" + offsets.stderr;
      const body = await getJson(url);
      const changed = body.stdout || body.stderr || body.status !== statusBadge.textContent;
      for (const stream of ["stdout", "stderr"]) {
        if (body[stream]) streams[stream].append(body[stream]);
        offsets[stream] = body[stream + "_next_offset"];
      }
      setStatus(body.status);
      note.hidden = true;
      delay = changed ? FAST_MS : Math.min(delay * 1.5, SLOW_MS);
      if (body.finished) return showResult();
    } catch (error) {
      // A hub restart or a dropped connection: keep following, more slowly.
      note.textContent = "Live updates paused (" + error.message + "); retrying.";
      note.hidden = false;
      delay = Math.min(Math.max(delay * 2, SLOW_MS), 10000);
    }
    setTimeout(poll, delay);
  }

  setTimeout(poll, delay);
})();
