"use strict";
// Draws terminal output into an element: ANSI SGR colours and styles become <span>s with classes
// (rh-fg-1, rh-bg-4, rh-bold...; 256-colour and truecolor as a colour set from script), and every other
// escape sequence (cursor movement, window titles, ...) and control character is dropped. The output is
// the relay's, so untrusted: it only ever goes in as text nodes, never as HTML. A sequence cut in two by
// a chunk boundary is held until the next chunk. A carriage return starts a new line, as in the HTML the
// page is first rendered from.
window.relayhub = window.relayhub || {};
(function (relayhub) {
  // CSI (ESC [ parameters final), OSC (ESC ] ... BEL or ESC \), DCS/SOS/PM/APC (ESC P|X|^|_ ... ESC \),
  // or any other escape (ESC, intermediates, a final that opens none of those).
  const SEQUENCE = /\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[ -/]*[0-OQ-WYZ\\`-~])/y;
  // How the start of one of those looks when the chunk ends before it does.
  const UNFINISHED = /^\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[PX^_][^\x1b]*\x1b?|[ -/]*)$/;
  const MAX_HELD = 4096;
  const CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;  // all but tab, newline and carriage return

  function plain() {
    return {bold: false, dim: false, italic: false, underline: false, strike: false, inverse: false,
            fg: null, bg: null};
  }

  // A colour is null (the terminal's own), 0-15 (a class of the palette) or an "rgb(r, g, b)" string.
  function rgb(values) {
    const [r, g, b] = values.map(Number);
    return [r, g, b].every((v) => Number.isInteger(v) && v >= 0 && v <= 255) ? `rgb(${r}, ${g}, ${b})` : undefined;
  }

  function indexed(n) {
    if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
    if (n < 16) return n;
    if (n >= 232) return rgb(Array(3).fill(8 + (n - 232) * 10));
    const level = (v) => (v ? 55 + v * 40 : 0);
    n -= 16;
    return rgb([level(Math.floor(n / 36)), level(Math.floor(n / 6) % 6), level(n % 6)]);
  }

  // 38/48 and what follows: 5;n or 2;r;g;b, or one part with colons (38:5:n, 38:2::r:g:b).
  // Gives the colour and how many further parameters it used.
  function extended(codes, i) {
    const sub = codes[i].split(":");
    if (sub.length > 1) {
      return [sub[1] === "5" ? indexed(Number(sub[2])) : sub[1] === "2" ? rgb(sub.slice(-3)) : undefined, 0];
    }
    if (codes[i + 1] === "5") return [indexed(Number(codes[i + 2])), 2];
    if (codes[i + 1] === "2") return [rgb(codes.slice(i + 2, i + 5)), 4];
    return [undefined, codes.length];
  }

  const FLAGS = {1: ["bold", true], 2: ["dim", true], 3: ["italic", true], 4: ["underline", true],
                 7: ["inverse", true], 9: ["strike", true], 21: ["underline", true], 23: ["italic", false],
                 24: ["underline", false], 27: ["inverse", false], 29: ["strike", false]};

  function applySgr(state, parameters) {
    const codes = parameters === "" ? ["0"] : parameters.split(";");
    for (let i = 0; i < codes.length; i++) {
      const code = Number(codes[i].split(":")[0] || 0);
      if (code === 0) Object.assign(state, plain());
      else if (code === 4 && codes[i].includes(":")) state.underline = codes[i] !== "4:0";
      else if (FLAGS[code]) state[FLAGS[code][0]] = FLAGS[code][1];
      else if (code === 22) state.bold = state.dim = false;
      else if (code >= 30 && code <= 37) state.fg = code - 30;
      else if (code >= 90 && code <= 97) state.fg = code - 90 + 8;
      else if (code >= 40 && code <= 47) state.bg = code - 40;
      else if (code >= 100 && code <= 107) state.bg = code - 100 + 8;
      else if (code === 39) state.fg = null;
      else if (code === 49) state.bg = null;
      else if (code === 38 || code === 48) {
        const [colour, used] = extended(codes, i);
        if (colour !== undefined) state[code === 38 ? "fg" : "bg"] = colour;
        i += used;
      }
    }
  }

  // The classes and script-set colours for a state, and a key that is equal for equal looks.
  function look(state) {
    let {fg, bg} = state;
    const classes = [];
    if (state.inverse) {
      [fg, bg] = [bg, fg];
      if (fg === null) classes.push("rh-fg-inverse");
      if (bg === null) classes.push("rh-bg-inverse");
    }
    if (typeof fg === "number") classes.push("rh-fg-" + fg);
    if (typeof bg === "number") classes.push("rh-bg-" + bg);
    for (const flag of ["bold", "dim", "italic", "underline", "strike"]) if (state[flag]) classes.push("rh-" + flag);
    const color = typeof fg === "string" ? fg : "", background = typeof bg === "string" ? bg : "";
    return {className: classes.join(" "), color, background, key: [classes.join(" "), color, background].join("|")};
  }

  class AnsiRenderer {
    constructor(element) {
      this.element = element;
      this.state = plain();
      this.look = look(this.state);
      this.held = "";
      this.last = null;  // the text node written last, and the key of its look
      this.lastKey = null;
    }

    // Draws a chunk; with end, also whatever was held back (an unfinished sequence is dropped).
    write(chunk, end = false) {
      const text = this.held + chunk;
      this.held = "";
      let at = 0;
      for (;;) {
        const escape = text.indexOf("\x1b", at);
        if (escape < 0) {
          let tail = text.slice(at);
          if (!end && tail.endsWith("\r")) {  // the \r of a \r\n may come first
            this.held = "\r";
            tail = tail.slice(0, -1);
          }
          this.text(tail);
          return;
        }
        this.text(text.slice(at, escape));
        SEQUENCE.lastIndex = escape;
        const match = SEQUENCE.exec(text);
        if (match) {
          if (match[2] === "m") this.sgr(match[1]);
          at = SEQUENCE.lastIndex;
          continue;
        }
        const rest = text.slice(escape);
        if (rest.length < MAX_HELD && UNFINISHED.test(rest)) {
          if (!end) this.held = rest;  // at the end, an unfinished sequence is dropped whole
          return;
        }
        at = escape + 1;  // a lone ESC: dropped
      }
    }

    end() {
      this.write("", true);
    }

    sgr(parameters) {
      applySgr(this.state, parameters);
      this.look = look(this.state);
    }

    text(text) {
      text = text.replace(/\r\n?/g, "\n").replace(CONTROLS, "");
      if (!text) return;
      if (this.last && this.lastKey === this.look.key && this.element.contains(this.last)) {
        this.last.appendData(text);
        return;
      }
      const node = document.createTextNode(text);
      if (this.look.key === "||") {
        this.element.append(node);
      } else {
        const span = document.createElement("span");
        span.className = this.look.className;
        if (this.look.color) span.style.color = this.look.color;
        if (this.look.background) span.style.backgroundColor = this.look.background;
        span.append(node);
        this.element.append(span);
      }
      this.last = node;
      this.lastKey = this.look.key;
    }
  }

  relayhub.AnsiRenderer = AnsiRenderer;
})(window.relayhub);
