"""Against a hub without the extensions the real relay-agent falls back to plain polling (SPEC §6).

The "original hub" is the real hub process with the extension routes left out of its URLconf. That
takes a settings module of its own, written to tmp_path, so no hub code changes for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from relay_agent.hub import ExtensionsUnsupported, HubClient, NotARelayhub

from commands.models import Command
from tests.e2e.processes import Hub, wait_for

SETTINGS = """
from relayhub.settings import *  # noqa: F403

ROOT_URLCONF = "original_hub_urls"
"""
URLS = """
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from relayhub.relay_urls import urlpatterns as relay_routes
from relayhub.web import errors

EXTENSIONS = {"relay-hello", "relay-next", "relay-started", "relay-output", "relay-results"}
urlpatterns = [route for route in relay_routes if route.name not in EXTENSIONS]
# Exempt, unlike relayhub/urls.py's catch-all: a POST there gets CSRF's HTML 403 page instead of a JSON 404.
urlpatterns.append(re_path(r"^relay/", csrf_exempt(errors.handler404)))
"""


@pytest.fixture
def original_hub(start_hub, tmp_path: Path) -> Hub:
    modules = tmp_path / "original_hub"
    modules.mkdir()
    (modules / "original_hub_settings.py").write_text(SETTINGS)
    (modules / "original_hub_urls.py").write_text(URLS)
    path = os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")]))
    return start_hub(env={"DJANGO_SETTINGS_MODULE": "original_hub_settings", "PYTHONPATH": path})


def test_the_original_hub_lacks_the_extensions(original_hub, e2e_relay) -> None:
    client = HubClient(original_hub.url, e2e_relay.api_key)

    assert client.verify()["assignmentId"] == str(e2e_relay.relay.pk)
    with pytest.raises(ExtensionsUnsupported):
        client.next_commands(1, 100)
    with pytest.raises(ExtensionsUnsupported):
        client.post_results([])
    with pytest.raises(NotARelayhub):
        client.hello()


def test_the_agent_sends_no_key_to_a_hub_without_hello_unless_told(original_hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, original_hub, wait=False)

    wait_for(lambda: agent.proc.poll() is not None, 15, "the agent to refuse the hub")
    assert agent.proc.returncode == 2
    assert "not a relayhub; not sending the api key" in agent.output
    assert "--skip-hub-check" in agent.output


def test_the_agent_polls_a_hub_without_the_extensions(original_hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, original_hub, "--poll-interval", "200", "--skip-hub-check")

    commands = [Command.objects.create(machine_id="e2e-machine", command=text, timeout_ms=5000)
                for text in ("echo polled", "exit 2")]

    for command in commands:
        wait_for(lambda c=command: Command.objects.get(pk=c.pk).is_terminal, 15, f"command {command.pk} to finish")
        command.refresh_from_db()
    assert [(c.status, c.output, c.exit_code) for c in commands] == [("completed", "polled\n", 0), ("failed", "", 2)]
    assert "hub has no long-poll extensions; falling back to polling" in agent.output
    # Without the started route the hub never sees the command running: claimed goes straight to its end.
    assert all(c.started_at is None for c in commands)
