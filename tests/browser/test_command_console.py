"""The command page as a console: ANSI colours drawn and every other escape dropped, output shown as text
(never as HTML), a search over stdout and stderr, a copy button, and auto-scroll that pauses and resumes.

The colours come from a real agent running printf; the other tests write output as a relay would,
through the ORM, so that chunks end exactly where the test says (in the middle of an escape, say).
"""

from __future__ import annotations

from playwright.sync_api import expect

from commands import output
from commands.models import Command

FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "500")
RUN_MS = 15_000
PAUSED = "Auto-scroll paused — jump to end"
RAW = ("\x1b", "[0m", "[31m", "[1;32m", "[2K", "]0;", "38;5", "48;2")


class Relay:
    """A command run by hand: claimed, started, its output written chunk by chunk, then finished."""

    def __init__(self, command: Command, relay) -> None:
        self.command, self.relay = command, relay
        self.sent = {"stdout": "", "stderr": ""}
        command.claim(relay)
        command.start(relay, 1)

    def write(self, text: str, stream: str = "stdout") -> None:
        output.store_chunks(self.command, [{"stream": stream, "offset": len(self.sent[stream]), "data": text}])
        self.sent[stream] += text

    def finish(self) -> None:
        self.command.finish(self.relay, 1, status="completed", exit_code=0, output=self.sent["stdout"],
                            stderr=self.sent["stderr"])


def running(superuser, e2e_relay, text: str = "make") -> Relay:
    command = Command.objects.create(machine_id="e2e-machine", command=text, timeout_ms=120_000,
                                     created_by=superuser)
    return Relay(command, e2e_relay.relay)


def open_page(browser, command: Command):
    browser.login("admin")
    browser.goto(f"/admin/commands/command/{command.pk}/change/")
    return browser.page


def colour(locator, prop: str = "color") -> str:
    return locator.evaluate(f"(element) => getComputedStyle(element).{prop}")


def at_bottom(page, pane: str = "#rh-stdout") -> bool:
    return page.locator(pane).evaluate("(e) => e.scrollHeight - e.scrollTop - e.clientHeight <= 4")


def assert_nothing_raw(page) -> None:
    panes = page.locator("#rh-stdout, #rh-stderr")
    shown = "".join(panes.all_inner_texts() + panes.all_text_contents())
    assert not [raw for raw in RAW if raw in shown], shown


def assert_colours_drawn(page) -> None:
    stdout, stderr = page.locator("#rh-stdout"), page.locator("#rh-stderr")
    expect(stdout).to_have_text("red bold green\norange true\n")
    expect(stderr).to_have_text("warn\n")
    red = stdout.locator("span", has_text="red").first
    expect(red).to_have_class("rh-fg-1")
    assert colour(red) == "rgb(205, 49, 49)"
    green = stdout.locator("span", has_text="bold green")
    expect(green).to_have_class("rh-fg-2 rh-bold")
    assert colour(green) == "rgb(13, 188, 121)" and colour(green, "fontWeight") == "700"
    assert colour(stdout.locator("span", has_text="orange")) == "rgb(255, 135, 0)"  # 256 colours: 208
    assert colour(stdout.locator("span", has_text="true"), "backgroundColor") == "rgb(10, 20, 30)"  # truecolor
    warn = stderr.locator("span", has_text="warn")
    expect(warn).to_have_class("rh-fg-11 rh-underline")
    assert colour(warn, "textDecorationLine") == "underline"
    # A terminal: light monospace text on a dark background.
    assert colour(stdout, "backgroundColor") == "rgb(30, 30, 30)" and colour(stdout) == "rgb(212, 212, 212)"
    assert "mono" in colour(stdout, "fontFamily")
    assert_nothing_raw(page)


def test_ansi_colours_are_drawn_and_other_escapes_dropped(browser, superuser, hub, e2e_relay, start_agent):
    script = (r"printf '\033[31mred\033[0m \033[1;32mbold green\033[0m\n';"
              r" printf '\033[2K\033[1A\033]0;title\007\033[38;5;208morange\033[0m \033[48;2;10;20;30mtrue\033[0m\n';"
              r" printf '\033[4;93mwarn\033[0m\n' >&2")
    command = Command.objects.create(machine_id="e2e-machine", command=script, timeout_ms=60_000,
                                     created_by=superuser)
    page = open_page(browser, command)
    start_agent(e2e_relay, hub, *FAST)

    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    assert_colours_drawn(page)  # as they came, live
    browser.screenshot("command-console-ansi")

    page.reload()
    assert_colours_drawn(page)  # from the page's first rendering


def test_html_in_the_output_is_shown_as_text(browser, superuser, e2e_relay):
    relay = running(superuser, e2e_relay)
    page = open_page(browser, relay.command)
    img = '<img src=x onerror="window.rhXss = 1">'
    script = "<script>window.rhXss = 2</script>"

    relay.write(f"\n{img}\n\x1b[31m{script}\x1b[0m\n")
    relay.write(f"<b>{img}</b>\n", "stderr")

    expect(page.locator("#rh-stderr")).to_have_text(f"<b>{img}</b>\n", timeout=RUN_MS)
    expect(page.locator("#rh-stdout")).to_have_text(f"\n{img}\n{script}\n")
    assert_shown_as_text(page, f"\n{img}\n{script}\n", f"<b>{img}</b>\n")  # as it came, live
    browser.screenshot("command-console-html-as-text")
    relay.finish()
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    page.reload()
    assert_shown_as_text(page, f"\n{img}\n{script}\n", f"<b>{img}</b>\n")  # from the page's first rendering


def assert_shown_as_text(page, stdout: str, stderr: str) -> None:
    assert page.locator("#rh-stdout").text_content() == stdout  # a leading newline too
    assert page.locator("#rh-stderr").text_content() == stderr
    expect(page.locator("#rh-live pre img, #rh-live pre script, #rh-live pre b")).to_have_count(0)
    assert page.evaluate("window.rhXss") is None


def test_split_escapes_search_copy_and_auto_scroll(browser, superuser, e2e_relay):
    relay = running(superuser, e2e_relay)
    page = open_page(browser, relay.command)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=browser.hub.url)
    stdout, follow = page.locator("#rh-stdout"), page.locator("#rh-follow-stdout")
    page.evaluate("window.rhSamePage = true")  # gone if the page reloads

    # An escape cut by chunk boundaries is held, then drawn; new output is followed to the end.
    relay.write("\x1b[3")
    relay.write("1mneedle 1\x1b")
    relay.write("[0m\n" + "".join(f"line {n}\n" for n in range(2, 80)))
    expect(stdout).to_contain_text("line 79", timeout=RUN_MS)
    expect(stdout.locator("span.rh-fg-1")).to_have_text("needle 1")
    assert_nothing_raw(page)
    assert at_bottom(page)
    expect(follow).to_be_hidden()

    # Scrolled up: new output does not move the pane, and the page says so.
    stdout.evaluate("(e) => { e.scrollTop = 0; }")
    expect(follow).to_be_visible()
    expect(follow).to_have_text(PAUSED)
    relay.write("needle 2\n" + "".join(f"more {n}\n" for n in range(40)))
    expect(stdout).to_contain_text("more 39", timeout=RUN_MS)
    assert stdout.evaluate("(e) => e.scrollTop") == 0
    browser.screenshot("command-console-paused")

    # The button jumps to the end and following resumes; so does scrolling back to the bottom.
    follow.click()
    expect(follow).to_be_hidden()
    assert at_bottom(page)
    relay.write("needle 3\n" + "".join(f"again {n}\n" for n in range(40)))
    expect(stdout).to_contain_text("again 39", timeout=RUN_MS)
    page.wait_for_function("() => { const e = document.getElementById('rh-stdout');"
                           " return e.scrollHeight - e.scrollTop - e.clientHeight <= 4; }")
    stdout.evaluate("(e) => { e.scrollTop = 10; }")
    expect(follow).to_be_visible()
    stdout.evaluate("(e) => { e.scrollTop = e.scrollHeight; }")
    expect(follow).to_be_hidden()

    # Search over stdout and stderr: counted, highlighted, stepped through; new output is searched too.
    relay.write("a NEEDLE on stderr\n", "stderr")
    expect(page.locator("#rh-stderr")).to_have_text("a NEEDLE on stderr\n", timeout=RUN_MS)
    page.fill("#rh-search", "needle")
    count = page.locator("#rh-search-count")
    expect(count).to_have_text("1 of 4")
    highlighted = "(name) => [...CSS.highlights.get(name)].map((range) => range.toString())"
    assert page.evaluate(highlighted, "rh-match") == ["needle", "needle", "needle", "NEEDLE"]
    assert page.evaluate(highlighted, "rh-match-current") == ["needle"]
    page.press("#rh-search", "Enter")
    expect(count).to_have_text("2 of 4")
    page.click("#rh-search-next")
    page.click("#rh-search-next")
    expect(count).to_have_text("4 of 4")
    assert page.evaluate(highlighted, "rh-match-current") == ["NEEDLE"]
    page.click("#rh-search-previous")
    page.press("#rh-search", "Shift+Enter")
    expect(count).to_have_text("2 of 4")
    assert page.evaluate("window.rhSamePage") is True  # Enter in the box submitted nothing
    relay.write("needle 5\n")
    expect(count).to_have_text("2 of 5", timeout=RUN_MS)
    browser.screenshot("command-console-search")
    page.fill("#rh-search", "no such text")
    expect(count).to_have_text("no matches")
    assert page.evaluate(highlighted, "rh-match") == []

    # Copy: the plain text, without the escapes, and the button says it worked.
    page.click("#rh-copy-stdout")
    expect(page.locator("#rh-copy-stdout")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == stdout.text_content() and copied.startswith("needle 1\nline 2\n") and "\x1b" not in copied
    expect(page.locator("#rh-copy-stdout")).to_have_text("Copy")

    relay.finish()
    expect(page.locator("#rh-status")).to_have_text("completed", timeout=RUN_MS)
    expect(follow).to_have_text("Jump to end")
