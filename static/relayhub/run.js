"use strict";
// Shows the SSH fields only when the target is SSH.
(function () {
  const form = document.getElementById("rh-run-form");
  if (!form) return;
  const rows = ["target_host", "target_port", "target_username"].map((name) => form.querySelector(".field-" + name));

  function update() {
    const ssh = form.querySelector('input[name="target_type"]:checked')?.value === "ssh";
    for (const row of rows) {
      if (row && !row.classList.contains("errors")) row.hidden = !ssh;
    }
  }

  form.addEventListener("change", update);
  update();
})();
