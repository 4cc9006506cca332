"use strict";
// Turns each checkbox list marked rh-picklist (commands.forms.PickList) into a scrolling list with a
// filter box, a "select all shown" box and a count of what is selected.
(function () {
  for (const list of document.querySelectorAll("div.rh-picklist")) {
    const boxes = Array.from(list.querySelectorAll('input[type="checkbox"]'));
    if (!boxes.length) continue;
    const name = boxes[0].name;
    const tools = document.createElement("div");
    tools.className = "rh-picklist-tools";

    const filter = document.createElement("input");
    filter.type = "search";
    filter.id = "rh-filter-" + name;
    filter.placeholder = "Filter…";
    filter.setAttribute("aria-label", "Filter the " + name + " list");
    filter.setAttribute("aria-controls", list.id);

    const allLabel = document.createElement("label");
    const all = document.createElement("input");
    all.type = "checkbox";
    all.id = "rh-all-" + name;
    allLabel.append(all, " Select all shown");

    const count = document.createElement("span");
    count.className = "help";
    count.id = "rh-count-" + name;
    count.setAttribute("aria-live", "polite");

    tools.append(filter, allLabel, count);
    // One box for the tools and the list, so that the admin's flex row keeps them stacked.
    const wrapper = document.createElement("div");
    wrapper.className = "rh-picklist-box";
    list.before(wrapper);
    wrapper.append(tools, list);

    const row = (box) => box.closest("div.rh-picklist > div") || box.parentElement;
    const shown = () => boxes.filter((box) => !row(box).hidden);

    function update() {
      const visible = shown();
      const checked = boxes.filter((box) => box.checked).length;
      all.checked = visible.length > 0 && visible.every((box) => box.checked);
      all.indeterminate = !all.checked && visible.some((box) => box.checked);
      count.textContent = checked + " of " + boxes.length + " selected" +
        (visible.length < boxes.length ? ", " + visible.length + " shown" : "");
    }

    filter.addEventListener("input", () => {
      const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const box of boxes) {
        const text = row(box).textContent.toLowerCase();
        row(box).hidden = !words.every((word) => text.includes(word));
      }
      update();
    });
    // Enter in the filter box must not submit the run form.
    filter.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
    all.addEventListener("change", () => {
      for (const box of shown()) box.checked = all.checked;
      update();
      list.dispatchEvent(new Event("change", {bubbles: true}));
    });
    list.addEventListener("change", update);
    update();
  }
})();
