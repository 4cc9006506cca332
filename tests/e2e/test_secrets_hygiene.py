"""Secrets never show: plant sentinels, run the whole flow, grep everything (SPEC §7).

The API key and transport secret (issued by the real management command),
an SSH private key and a password held as shared credentials must appear in
no log line, no response body and no rendered admin page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import User

from assignments.models import RelayAssignment
from commands.models import Command
from configpush.models import ConfigPush
from credentials.models import SharedCredential
from relayhub.web import operator_tokens
from tests.agent.sshd import SSHDUnavailable, run_sshd
from tests.e2e.processes import ROOT, Agent, test_database_url, wait_for

PASSWORD_SENTINEL = "pw-SENTINEL-7f3a9c1e-never-shown"


def issue_key() -> dict:
    env = {**os.environ, "DATABASE_URL": test_database_url()}
    result = subprocess.run([sys.executable, "manage.py", "issue_relay_key", "--machine-id", "hygiene", "--name",
                             "hygiene relay", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    return json.loads(result.stdout)


class Recorder(requests.Session):
    """A session that keeps every response body it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[tuple[str, str]] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        self.bodies.append((f"{method} {url}", response.text))
        return response


def test_no_secret_appears_anywhere(hub, tmp_path: Path):
    try:
        server_cm = run_sshd(tmp_path / "sshd", log_level="VERBOSE")
        server = server_cm.__enter__()
    except SSHDUnavailable:
        pytest.skip("no sshd")
    try:
        issued = issue_key()
        relay = RelayAssignment.objects.get(pk=issued["assignmentId"])
        private_key_line = server.client_key.strip().splitlines()[2]
        sentinels = {"api key": issued["apiKey"], "key secret": issued["apiKey"].split("_")[2][:32],
                     "transport secret": issued["transportSecret"], "ssh private key": private_key_line,
                     "password": PASSWORD_SENTINEL}

        operator = User.objects.create_superuser("auditor", "a@example.com", "pw-auditor-123456")
        api = Recorder()
        api.headers["Authorization"] = f"Token {operator_tokens.issue(operator)}"
        for name, kind, value in (("ssh-key", "ssh_key", server.client_key), ("db", "password", PASSWORD_SENTINEL)):
            response = api.post(f"{hub.url}/api/v1/shared-credentials/", json={
                "name": name, "credential_type": kind, "target_host": "127.0.0.1", "value": value,
                "assigned_relays": [issued["assignmentId"]]})
            assert response.status_code == 201, response.text
        ConfigPush.objects.create(relay=relay, push_type="ssh_targets", payload={"targets": [
            {"host": "127.0.0.1", "port": server.port, "hostKey": server.host_key}]})

        agent = Agent(issued["apiKey"], hub.url, tmp_path / "store", tmp_path / "agent.log", "--long-poll-wait",
                      "2000", shared_secret=issued["transportSecret"]).start()
        try:
            wait_for(lambda: relay.config_pushes.filter(status="acked").count() == 3, 30, "pushes to be applied")
            response = api.post(f"{hub.url}/api/v1/commands/", json={
                "machine_id": "hygiene", "command": "echo via-ssh", "target_type": "ssh",
                "target_host": "127.0.0.1", "target_port": server.port, "target_username": server.user})
            command_id = response.json()["id"]
            wait_for(lambda: Command.objects.get(pk=command_id).is_terminal, 30, "the SSH command")
            command = Command.objects.get(pk=command_id)
            assert (command.status, command.output) == ("completed", "via-ssh\n"), command.error
            for path in ("/api/v1/relays/", f"/api/v1/commands/{command_id}/", f"/api/v1/commands/{command_id}/output/",
                         "/api/v1/shared-credentials/", "/api/v1/config-pushes/", f"/api/v1/rpc/commands/{command_id}"):
                assert api.get(hub.url + path).status_code == 200, path
            browse_admin(hub.url, operator.username, "pw-auditor-123456", relay, api.bodies)
        finally:
            agent.stop()

        assert SharedCredential.objects.count() == 2
        haystacks = {"hub log": hub.output, "agent log": agent.output,
                     "sshd log": (server.dir / "sshd.log").read_text(errors="replace")}
        haystacks |= {f"response {where}": body for where, body in api.bodies}
        assert len(api.bodies) > 15
        for where, text in haystacks.items():
            for what, sentinel in sentinels.items():
                assert sentinel not in text, f"the {what} appears in the {where}"
    finally:
        server_cm.__exit__(None, None, None)


def browse_admin(base: str, username: str, password: str, relay: RelayAssignment, bodies: list) -> None:
    browser = Recorder()
    browser.bodies = bodies
    login = browser.get(f"{base}/admin/login/")
    token = browser.cookies["csrftoken"]
    browser.post(f"{base}/admin/login/", data={"username": username, "password": password,
                                               "csrfmiddlewaretoken": token, "next": "/admin/"},
                 headers={"Referer": f"{base}/admin/login/"})
    assert login.status_code == 200
    pages = ["/admin/", "/admin/assignments/relayassignment/", f"/admin/assignments/relayassignment/{relay.pk}/change/",
             "/admin/commands/command/", "/admin/credentials/sharedcredential/", "/admin/configpush/configpush/",
             "/admin/credentials/credentialinventoryitem/", "/admin/assignments/relayapikey/"]
    pages += [f"/admin/credentials/sharedcredential/{pk}/change/" for pk in SharedCredential.objects.values_list(
        "pk", flat=True)]
    pages += [f"/admin/configpush/configpush/{pk}/change/" for pk in ConfigPush.objects.values_list("pk", flat=True)]
    for page in pages:
        response = browser.get(base + page)
        assert response.status_code == 200, (page, response.status_code)
        assert "/admin/login/" not in response.url
