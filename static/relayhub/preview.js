"use strict";
// The run form's targets mode: as the selector is typed or targets are ticked, asks the preview endpoint
// (fleet.admin_run.preview_view, the admin session) which SSH targets match, and lists them.
(function () {
  const form = document.getElementById("rh-run-form");
  const preview = document.getElementById("rh-preview");
  const selector = document.getElementById("id_selector");
  if (!form || !preview || !selector) return;
  const summary = document.getElementById("rh-preview-summary");
  const table = document.getElementById("rh-preview-table");
  const body = document.getElementById("rh-preview-rows");
  const DEBOUNCE_MS = 250;
  let timer = null;
  let inFlight = null;

  // The preview sits right under the targets fieldset, and the parser's message right under the box.
  const fieldset = form.querySelector("fieldset.rh-mode-targets");
  if (fieldset) fieldset.after(preview);
  const error = document.createElement("p");
  error.id = "rh-selector-error";
  error.className = "rh-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  selector.after(error);
  selector.setAttribute("aria-describedby", [selector.getAttribute("aria-describedby"), error.id]
    .filter(Boolean).join(" "));

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.append(td);
    return td;
  }

  function badge(text, kind) {
    const span = document.createElement("span");
    span.className = "rh-badge rh-" + kind;
    span.textContent = text;
    return span;
  }

  function show(result) {
    error.hidden = true;
    selector.removeAttribute("aria-invalid");
    body.replaceChildren(...result.targets.map((target) => {
      const row = document.createElement("tr");
      row.dataset.target = target.name;
      cell(row, target.name);
      cell(row, (target.username ? target.username + "@" : "") + target.address);
      cell(row, target.labels || "–");
      cell(row, target.relays.map((relay) => relay.name + ": " + relay.state).join(", ") || "–");
      const state = cell(row, "");
      state.append(badge(target.online ? "online" : "offline", target.online ? "online" : "offline"));
      if (!target.may_run) state.append(" ", badge("not yours to run", "failed"));
      return row;
    }));
    table.hidden = result.count === 0;
    if (result.count === 0) {
      summary.textContent = selector.value.trim() ? "No enabled SSH target you can see matches." :
        "Type a selector or choose SSH targets.";
    } else {
      summary.textContent = result.count + " target" + (result.count === 1 ? "" : "s") + ", " + result.online +
        " with a relay online" + (result.shown < result.count ? " (the first " + result.shown + " shown)" : "") + ".";
    }
  }

  async function refresh() {
    const params = new URLSearchParams({selector: selector.value});
    for (const box of form.querySelectorAll('input[name="targets"]:checked')) params.append("targets", box.value);
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    try {
      const response = await fetch(preview.dataset.url + "?" + params, {
        credentials: "same-origin", headers: {Accept: "application/json"}, signal: controller.signal});
      const result = await response.json();
      if (controller !== inFlight) return;
      if (response.status === 400) {
        error.textContent = result.error;
        error.hidden = false;
        selector.setAttribute("aria-invalid", "true");
        summary.textContent = "Fix the selector to see its targets.";
        table.hidden = true;
        return;
      }
      if (!response.ok) throw new Error(result.error || "HTTP " + response.status);
      show(result);
    } catch (failure) {
      if (failure.name === "AbortError") return;
      summary.textContent = "The preview is not available (" + failure.message + ").";
    } finally {
      if (controller === inFlight) inFlight = null;
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  selector.addEventListener("input", later);
  // Enter in the selector box updates the preview at once instead of submitting the form.
  selector.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); refresh(); }
  });
  form.addEventListener("change", (event) => {
    if (["targets", "mode"].includes(event.target.name) || event.target.id === "id_targets") later();
  });
  refresh();
})();
