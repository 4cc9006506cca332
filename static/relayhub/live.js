"use strict";
// A live page's transport: Server-Sent Events (EventSource) from the hub's stream, or polling when the browser
// has no EventSource or the stream keeps failing. The page gets data-transport="sse" or "poll", so that one
// can tell which it follows by; either way the same renderer draws what comes.
window.relayhub = window.relayhub || {};
(function (relayhub) {
  // Errors in a row, with no event between them, before the page falls back to polling. The browser
  // reconnects by itself after a dropped connection or the stream's planned end (each stream sends an event
  // as soon as it is open); an answer that is not an event stream (an error page) ends the source at once.
  const FAILURES = 3;

  // element: marked with the transport; url: the stream; handlers: {event name: function(data)};
  // poll: starts polling instead (or null: the page then stays as drawn). Returns {close()}.
  relayhub.follow = function ({element, url, handlers, poll}) {
    let source = null, failures = 0, closed = false;

    function fallBack() {
      if (source) source.close();
      source = null;
      if (closed) return;
      closed = true;
      element.dataset.transport = "poll";
      if (poll) poll();
    }

    if (!url || typeof window.EventSource !== "function") {
      fallBack();
      return {close() {}};
    }
    source = new EventSource(url);
    element.dataset.transport = "sse";
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        failures = 0;
        handle(JSON.parse(event.data));
      });
    }
    source.addEventListener("error", () => {
      if (closed) return;
      failures += 1;
      if (source.readyState === EventSource.CLOSED || failures >= FAILURES) fallBack();
    });
    return {
      close() {
        closed = true;
        if (source) source.close();
      },
    };
  };
})(window.relayhub);
