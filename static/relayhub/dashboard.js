"use strict";
// The dashboard's cards and counts, kept up to date by its stream (relayhub.admin_site.live): each number goes
// to the element with its data-testid. Without EventSource the page stays as drawn.
(function () {
  const board = document.querySelector(".rh-dashboard[data-stream-url]");
  if (!board) return;
  window.relayhub.follow({
    element: board,
    url: board.dataset.streamUrl,
    handlers: {
      numbers(numbers) {
        for (const [key, value] of Object.entries(numbers)) {
          const element = board.querySelector(`[data-testid="${key}"]`);
          if (element) element.textContent = value;
        }
      },
    },
    poll: null,
  });
})();
