"use strict";
// The run form: the SSH fields only when the target is SSH; with a "Run on" choice (fleet's form),
// only the fieldsets of the chosen mode (rh-mode-machines or rh-mode-targets).
(function () {
  const form = document.getElementById("rh-run-form");
  if (!form) return;
  form.classList.add("rh-run-mode");
  const rows = ["target_host", "target_port", "target_username"].map((name) => form.querySelector(".field-" + name));

  function update() {
    const mode = form.querySelector('input[name="mode"]:checked')?.value;
    if (mode) {
      for (const part of form.querySelectorAll(".rh-mode-machines, .rh-mode-targets")) {
        part.hidden = !part.classList.contains("rh-mode-" + mode);
      }
    }
    const ssh = form.querySelector('input[name="target_type"]:checked')?.value === "ssh";
    for (const row of rows) {
      if (row && !row.classList.contains("errors")) row.hidden = !ssh;
    }
  }

  form.addEventListener("change", update);
  update();
})();
