"use strict";
// Follows a command's output from the REST output endpoint, by offsets, until it ends, and hands it to the
// console (console.js). Whenever the status changes, the page's other facts ([data-live]: times, exit code,
// duration...) are fetched again, as the server writes them, from the admin's state endpoint.
(function () {
  const panel = document.getElementById("rh-live");
  if (!panel) return;
  const terminal = window.relayhub.openConsole({stdout: document.getElementById("rh-stdout"),
                                                stderr: document.getElementById("rh-stderr")});
  if (panel.dataset.finished === "true") {
    terminal.end();
    return;
  }
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

  let shownStatus = statusBadge.textContent;

  async function refreshFacts() {
    const state = await getJson(panel.dataset.stateUrl);
    setStatus(state.status);
    shownStatus = state.status;
    for (const element of document.querySelectorAll("[data-live]")) {
      const text = state.facts[element.dataset.live];
      if (text !== undefined) element.textContent = text;
    }
    const error = document.getElementById("rh-error");
    error.textContent = state.error;
    error.hidden = !state.error;
    document.getElementById("rh-truncated").hidden = !state.output_truncated;
    showFullOutput(state.full_output || []);
    return state;
  }

  // "Download full stdout (12.5 MiB)": the relay uploads the full copy before it reports the end.
  function showFullOutput(links) {
    const box = document.getElementById("rh-full-output");
    if (!box || !links.length) return;
    box.replaceChildren(...links.map((link) => {
      const anchor = document.createElement("a");
      anchor.href = link.url;
      anchor.className = "rh-download";
      anchor.dataset.stream = link.stream;
      anchor.textContent = link.label;
      return anchor;
    }));
    box.hidden = false;
  }

  async function showResult() {
    const state = await refreshFacts();
    if (!state.finished) return false;
    for (const id of ["rh-cancel-form", "rh-cancel-note"]) {
      const element = document.getElementById(id);
      if (element) (id === "rh-cancel-form" ? element.parentElement : element).remove();
    }
    panel.dataset.finished = "true";
    terminal.end();
    return true;
  }

  async function poll() {
    try {
      const url = panel.dataset.outputUrl + "?stdout_offset=" + offsets.stdout + "&stderr_offset=" + offsets.stderr;
      const body = await getJson(url);
      const moved = body.status !== shownStatus;
      const changed = body.stdout || body.stderr || moved;
      for (const stream of ["stdout", "stderr"]) {
        if (body[stream]) terminal.write(stream, body[stream]);
        offsets[stream] = body[stream + "_next_offset"];
      }
      note.hidden = true;
      delay = changed ? FAST_MS : Math.min(delay * 1.5, SLOW_MS);
      if (body.finished) {
        if (await showResult()) return;
      } else if (moved) {
        await refreshFacts();
      }
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
