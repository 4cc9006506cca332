"use strict";
// The command page's console: stdout and stderr drawn as a terminal (ansi.js), each following its new
// output until the operator scrolls up (a button says so and jumps back), a copy button for each, and
// one search over both, its matches highlighted (the CSS Custom Highlight API; without it, the current
// match is selected). command.js feeds it what the output endpoint sends.
window.relayhub = window.relayhub || {};
(function (relayhub) {
  const MAX_MATCHES = 5000;
  const LIVE_LABEL = "Auto-scroll paused — jump to end", ENDED_LABEL = "Jump to end";

  function atBottom(pane) {
    return pane.scrollHeight - pane.scrollTop - pane.clientHeight <= 4;
  }

  // One stream's pane: its renderer, whether it follows new output, its copy and jump-to-end buttons.
  function openPane(pane) {
    const renderer = new relayhub.AnsiRenderer(pane);
    const follow = document.querySelector(`.rh-follow[data-pane="${pane.id}"]`);
    const copy = document.querySelector(`.rh-copy[data-pane="${pane.id}"]`);
    const state = {pane, renderer, following: true};

    function setFollowing(following) {
      state.following = following;
      follow.hidden = following;
    }

    state.toEnd = () => {
      pane.scrollTop = pane.scrollHeight;
      setFollowing(true);
    };
    pane.addEventListener("scroll", () => setFollowing(atBottom(pane)));
    follow.addEventListener("click", state.toEnd);
    copy.addEventListener("click", () => copyText(copy, pane));
    copy.hidden = false;

    const initial = pane.textContent;  // the page's first rendering, escapes and all
    pane.textContent = "";
    renderer.write(initial);
    return state;
  }

  async function copyText(button, pane) {
    const label = button.dataset.label || (button.dataset.label = button.textContent);
    let copied = false;
    try {
      await navigator.clipboard.writeText(pane.textContent);
      copied = true;
    } catch {
      // No clipboard API (a page served over plain HTTP) or no permission: the old way, through a selection.
      const range = document.createRange();
      range.selectNodeContents(pane);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copied = document.execCommand("copy");
    }
    button.textContent = copied ? "Copied" : "Copy failed";
    button.classList.toggle("rh-copied", copied);
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove("rh-copied");
    }, 1500);
  }

  // A pane's text as one string, and where each of its text nodes starts in it.
  function textMap(pane) {
    const nodes = [];
    let text = "";
    const walker = document.createTreeWalker(pane, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push({node, start: text.length});
      text += node.data;
    }
    return {nodes, text};
  }

  // The text node and offset of a position in textMap's string (an end lies in the node before).
  function locate(nodes, position, isEnd) {
    let low = 0, high = nodes.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (isEnd ? nodes[middle].start < position : nodes[middle].start <= position) low = middle;
      else high = middle - 1;
    }
    return [nodes[low].node, position - nodes[low].start];
  }

  function openSearch(panes) {
    const box = document.getElementById("rh-search");
    const count = document.getElementById("rh-search-count");
    const highlights = window.CSS && CSS.highlights && window.Highlight ? CSS.highlights : null;
    let matches = [], current = -1;

    function find() {
      const previous = matches[current];
      matches = [];
      const query = box.value;
      if (query) {
        const pattern = new RegExp(query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
        for (const {pane} of panes) {
          const {nodes, text} = textMap(pane);
          for (const match of text.matchAll(pattern)) {
            if (matches.length === MAX_MATCHES) break;
            const range = document.createRange();
            range.setStart(...locate(nodes, match.index, false));
            range.setEnd(...locate(nodes, match.index + match[0].length, true));
            matches.push({pane, start: match.index, range});
          }
        }
      }
      // New output leaves the current match where it was.
      const same = previous ? matches.findIndex((m) => m.pane === previous.pane && m.start === previous.start) : -1;
      current = same >= 0 ? same : matches.length ? 0 : -1;
    }

    function show(scroll) {
      const more = matches.length === MAX_MATCHES ? "+" : "";
      count.textContent = !box.value ? "" : matches.length ? `${current + 1} of ${matches.length}${more}`
        : "no matches";
      if (highlights) {
        highlights.set("rh-match", new Highlight(...matches.map((m) => m.range)));
        const focused = new Highlight(...(current >= 0 ? [matches[current].range] : []));
        focused.priority = 1;
        highlights.set("rh-match-current", focused);
      }
      if (!scroll || current < 0) return;
      const {pane, range} = matches[current];
      if (!highlights) {
        getSelection().removeAllRanges();
        getSelection().addRange(range);
      }
      const where = range.getBoundingClientRect(), frame = pane.getBoundingClientRect();
      pane.scrollTop += where.top - frame.top - pane.clientHeight / 2;
      pane.scrollLeft += where.left - frame.left - pane.clientWidth / 2;
      (pane.closest(".rh-terminal") || pane).scrollIntoView({block: "nearest"});
    }

    function step(by) {
      if (!matches.length) return;
      current = (current + by + matches.length) % matches.length;
      show(true);
    }

    box.addEventListener("input", () => {
      current = -1;
      matches = [];
      find();
      show(true);
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();  // the admin's form around the page must not be submitted
        step(event.shiftKey ? -1 : 1);
      } else if (event.key === "Escape") {
        box.value = "";
        box.dispatchEvent(new Event("input"));
      }
    });
    document.getElementById("rh-search-next").addEventListener("click", () => step(1));
    document.getElementById("rh-search-previous").addEventListener("click", () => step(-1));
    document.getElementById("rh-console-tools").hidden = false;
    return () => {
      if (!box.value) return;
      find();
      show(false);
    };
  }

  // Opens the console on the page's panes; write(stream, text) adds output, end() says there is no more.
  relayhub.openConsole = function (streams) {
    const panes = {};
    for (const [name, element] of Object.entries(streams)) panes[name] = openPane(element);
    const research = openSearch(Object.values(panes));
    for (const pane of Object.values(panes)) pane.toEnd();
    const labels = (text) => document.querySelectorAll(".rh-follow").forEach((b) => { b.textContent = text; });
    labels(LIVE_LABEL);
    return {
      write(stream, text) {
        const pane = panes[stream];
        pane.renderer.write(text);
        if (pane.following) pane.toEnd();
        research();
      },
      end() {
        for (const pane of Object.values(panes)) {
          pane.renderer.end();
          if (pane.following) pane.toEnd();
        }
        research();
        labels(ENDED_LABEL);
      },
    };
  };
})(window.relayhub);
