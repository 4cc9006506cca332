"""A Content-Security-Policy on every page for people, and nothing in them that would need it loosened."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
REQUIRED = {
    "default-src": {"'self'"}, "script-src": {"'self'"}, "object-src": {"'none'"},
    "base-uri": {"'self'"}, "form-action": {"'self'"}, "frame-ancestors": {"'none'"},
}


def policy(response) -> dict[str, set[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: set(values) for name, *values in directives}


class ScriptFinder(HTMLParser):
    """Inline scripts (a <script> with a body or without src) and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        handlers = [name for name, _ in attrs if name.startswith("on")]
        if handlers:
            self.inline.append(f"<{tag} {' '.join(handlers)}>")
        if any(value and value.strip().lower().startswith("javascript:") for _, value in attrs):
            self.inline.append(f"<{tag}> with a javascript: URL")
        if tag == "script":
            self._in_script = True
            if "src" not in dict(attrs):
                self.inline.append("<script> without src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"<script> body {data.strip()[:60]!r}")


def inline_scripts(html: str) -> list[str]:
    finder = ScriptFinder()
    finder.feed(html)
    return finder.inline


def assert_strict(response) -> None:
    found = policy(response)
    for name, values in REQUIRED.items():
        assert found.get(name) == values, (name, found.get(name))
    assert not any("unsafe" in value for value in found["script-src"] | found["default-src"])


@pytest.mark.django_db
def test_the_login_page_has_the_policy():
    from django.test import Client

    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert_strict(response)
    assert inline_scripts(response.content.decode()) == []


def test_admin_pages_have_the_policy_and_no_inline_script(admin_client_, relay, make_command):
    command = make_command()
    pages = ["/admin/", "/admin/commands/command/run/", f"/admin/commands/command/{command.pk}/change/",
             f"/admin/assignments/relayassignment/{relay.pk}/change/", "/admin/commands/command/"]
    for path in pages:
        response = admin_client_.get(path)
        assert response.status_code == 200, path
        assert_strict(response)
        assert inline_scripts(response.content.decode()) == [], path


def test_the_api_docs_need_no_inline_script(admin_client_):
    page = admin_client_.get("/api/docs/")
    assert page.status_code == 200
    assert_strict(page)
    html = page.content.decode()
    assert inline_scripts(html) == []
    setup = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"', html)
    assert setup, "the docs page loads no set-up script"
    script = admin_client_.get(setup.group(1).replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_api_answers_carry_the_policy_too(admin_client_):
    assert_strict(admin_client_.get("/api/v1/relays/"))


@pytest.mark.parametrize("template", sorted(str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")))
def test_templates_hold_no_inline_script(template):
    text = (TEMPLATES / template).read_text()
    without_tags = re.sub(r"{%.*?%}|{{.*?}}", "x", text, flags=re.S)
    assert inline_scripts(without_tags) == []
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text, flags=re.I)


def test_the_finder_sees_what_it_must():
    assert inline_scripts("<script>alert(1)</script>") == ["<script> without src", "<script> body 'alert(1)'"]
    assert inline_scripts('<a href="javascript:x()" onclick="y()">') == ["<a onclick>", "<a> with a javascript: URL"]
    assert inline_scripts('<script src="/static/a.js" defer></script>') == []
