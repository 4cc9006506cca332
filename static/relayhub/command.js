"use strict";
// Follows a command until it ends and hands its output to the console (console.js): over its stream
// (commands.streams, through live.js), whose "output" events carry what the REST output endpoint answers
// and whose "state" events what the admin's state endpoint does; or, when that fails, by polling those two
// endpoints by offsets. Either way the page's other facts ([data-live]: times, exit code, duration...) are
// drawn as the server writes them.
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
  let live = null;

  function showOutput(body) {
    for (const stream of ["stdout", "stderr"]) {
      if (body[stream]) terminal.write(stream, body[stream]);
      offsets[stream] = body[stream + "_next_offset"];
    }
  }

  // The state endpoint's answer, or a state event: the facts, and the end once the command has ended.
  function showState(state) {
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
    if (state.finished) showEnd();
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

  function showEnd() {
    if (panel.dataset.finished === "true") return;
    for (const id of ["rh-cancel-form", "rh-cancel-note"]) {
      const element = document.getElementById(id);
      if (element) (id === "rh-cancel-form" ? element.parentElement : element).remove();
    }
    panel.dataset.finished = "true";
    if (live) live.close();
    terminal.end();
  }

  async function refreshFacts() {
    return showState(await getJson(panel.dataset.stateUrl));
  }

  // The fallback: the output endpoint by offsets, and the state endpoint whenever the status moves.
  async function poll() {
    try {
      const url = panel.dataset.outputUrl + "?stdout_offset=" + offsets.stdout + "&stderr_offset=" + offsets.stderr;
      const body = await getJson(url);
      const moved = body.status !== shownStatus;
      const changed = body.stdout || body.stderr || moved;
      showOutput(body);
      note.hidden = true;
      delay = changed ? FAST_MS : Math.min(delay * 1.5, SLOW_MS);
      if (body.finished || moved) {
        if ((await refreshFacts()).finished) return;
      }
    } catch (error) {
      // A hub restart or a dropped connection: keep following, more slowly.
      note.textContent = "Live updates paused (" + error.message + "); retrying.";
      note.hidden = false;
      delay = Math.min(Math.max(delay * 2, SLOW_MS), 10000);
    }
    setTimeout(poll, delay);
  }

  // The stream starts where the page's own rendering ended; a reconnect, where its last output event did.
  live = window.relayhub.follow({
    element: panel,
    url: panel.dataset.streamUrl + "?stdout_offset=" + offsets.stdout + "&stderr_offset=" + offsets.stderr,
    handlers: {output: showOutput, state: showState},
    poll: () => setTimeout(poll, delay),
  });
})();
