"""Signed self-update end to end: wheels built from this repository, the real hub and relay-agent processes.

Wheel A is relay_agent as it is; B is a copy with a bumped version; a broken B exits as it starts.
The agent runs from A installed with pip --target (a versioned layout of its own), updates to B
through the hub (download, SHA-256, Ed25519 signature, pip --target, the current symlink, the
launcher) and reports B's version; commands still run after. A tampered wheel, a release signed by
another key and a broken B leave it running A with the command failed saying why; --no-self-update
refuses updates whatever the hub asks. The private release key shows in no log or answer.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentupdates import releases
from agentupdates.models import AgentRelease
from assignments.models import RelayStatus
from commands import agent_update
from commands.models import Command
from relay_agent import __version__ as VERSION_A
from relayhub.relay import release_key
from tests.conftest import api_client_for
from tests.e2e.processes import ROOT, finished, wait_for

VERSION_B = VERSION_A + ".post1"
VERSION_BROKEN = VERSION_A + ".post2"
VERSION_HANGING = VERSION_A + ".post3"
# What a broken B does first thing: exit, or hang without ever verifying.
BREAKAGE = {"exits": "    raise SystemExit(3)\n", "hangs": "    import time\n    time.sleep(3600)\n"}
FAST = ("--long-poll-wait", "500", "--heartbeat-interval", "2000")


def build(tmp: Path, version: str | None, broken: str = "") -> subprocess.Popen:
    source = tmp / f"src-{version or 'a'}"
    shutil.copytree(ROOT / "relay_agent", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    if version:
        for path, pattern in ((source / "pyproject.toml", r'^version = ".*"$'),
                              (source / "relay_agent" / "__init__.py", r'^__version__ = ".*"$')):
            text = re.sub(pattern, pattern.split(" =")[0].lstrip("^") + f' = "{version}"', path.read_text(),
                          count=1, flags=re.M)
            path.write_text(text)
    if broken:
        cli = source / "relay_agent" / "cli.py"
        cli.write_text(cli.read_text().replace("def main(argv: list[str] | None = None) -> int:\n",
                                               "def main(argv: list[str] | None = None) -> int:\n"
                                               + BREAKAGE[broken]))
    return subprocess.Popen([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "wheels"),
                             str(source)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    builds = [build(tmp, None), build(tmp, VERSION_B), build(tmp, VERSION_BROKEN, broken="exits"),
              build(tmp, VERSION_HANGING, broken="hangs")]
    for process in builds:
        assert process.wait(300) == 0, process.stderr.read().decode()[-2000:]
    found = {path.name.split("-")[1]: path for path in (tmp / "wheels").glob("*.whl")}
    return {"a": found[VERSION_A], "b": found[VERSION_B], "broken": found[VERSION_BROKEN],
            "hanging": found[VERSION_HANGING]}


@pytest.fixture
def release_env(tmp_path: Path, settings) -> dict[str, str]:
    """The release key and storage, the same for this process (which publishes) and the hub (which serves)."""
    key_file, store = tmp_path / "keys" / "release.pem", tmp_path / "releases"
    settings.RELAYHUB = {**settings.RELAYHUB, "AGENT_RELEASE_KEY_FILE": str(key_file)}
    settings.STORAGES = {**settings.STORAGES, "agent_releases": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(store)}}}
    release_key.create()
    return {"RELAYHUB_AGENT_RELEASE_KEY_FILE": str(key_file), "RELAYHUB_AGENT_RELEASES_DIR": str(store)}


@pytest.fixture
def update_hub(start_hub, release_env):
    return start_hub(env=release_env)


@pytest.fixture
def agent_a(wheels, tmp_path: Path):
    """Start an agent from wheel A installed in a directory of its own."""
    install = tmp_path / "a"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(install),
                    str(wheels["a"])], check=True)
    path = os.pathsep.join([str(install), os.environ.get("PYTHONPATH", "")])

    def start(start_agent, relay, hub, *args: str):
        return start_agent(relay, hub, *FAST, "--install-root", str(tmp_path / "root"), *args,
                           env={"PYTHONPATH": path})

    return start


def publish(wheel: Path) -> AgentRelease:
    return releases.register(wheel.read_bytes(), wheel.name)


def queue_update(version: str, machine: str = "e2e-machine"):
    from django.contrib.auth.models import User
    admin = User.objects.filter(username="e2e-admin").first() or User.objects.create_superuser(
        "e2e-admin", password="pw-e2e-123456")
    return api_client_for(admin).post("/api/v1/commands/", {
        "machine_id": machine, "kind": "update_agent", "agent_version": version}, format="json")


def status(relay) -> RelayStatus:
    return RelayStatus.objects.get(pk=relay.pk)


def runs_a_command(text: str = "echo still-here") -> None:
    command = finished(Command.objects.create(machine_id="e2e-machine", command=text, timeout_ms=10_000), 30)
    assert (command.status, command.output) == ("completed", "still-here\n"), (command.status, command.error)


def private_texts(env: dict[str, str]) -> list[str]:
    pem = Path(env["RELAYHUB_AGENT_RELEASE_KEY_FILE"]).read_text()
    return ["".join(line for line in pem.splitlines() if "-----" not in line)]


def test_an_agent_updates_from_a_to_b_reports_b_and_still_runs_commands(
        update_hub, e2e_relay, start_agent, agent_a, wheels, release_env, tmp_path):
    agent = agent_a(start_agent, e2e_relay, update_hub)
    assert status(e2e_relay.relay).version == VERSION_A
    wait_for(lambda: "self_update" in status(e2e_relay.relay).capabilities, 30, "the self_update capability")
    pid = agent.proc.pid
    release = publish(wheels["b"])
    response = queue_update(VERSION_B)
    assert response.status_code == 201, response.json()
    command = finished(Command.objects.get(pk=response.json()["id"]), 120)
    assert command.status == "completed", (command.error, agent.output[-4000:])
    assert f"updated from {VERSION_A} to {VERSION_B}" in command.output
    wait_for(lambda: status(e2e_relay.relay).version == VERSION_B, 30, "the new version reported")
    current = tmp_path / "root" / "current"
    assert current.resolve() == (tmp_path / "root" / "versions" / VERSION_B).resolve()
    assert (current / "relay_agent" / "__init__.py").read_text().count(VERSION_B) == 1
    assert agent.proc.pid == pid and agent.proc.poll() is None  # the same process: now the launcher
    runs_a_command()
    # The pinned key is the hub's, learned on first verify.
    assert (tmp_path / "store-0" / "release-public-key").read_text().strip() == release_key.public_key_text()
    assert release.sha256 == hashlib.sha256(wheels["b"].read_bytes()).hexdigest()
    assert agent.stop() == 0
    for text in private_texts(release_env):
        assert text not in agent.output and text not in update_hub.output


def test_a_tampered_wheel_and_a_release_signed_by_another_key_are_refused(
        update_hub, e2e_relay, start_agent, agent_a, wheels, release_env, tmp_path):
    agent = agent_a(start_agent, e2e_relay, update_hub)
    wait_for(lambda: "self_update" in status(e2e_relay.relay).capabilities, 30, "the self_update capability")
    assert (tmp_path / "store-0" / "release-public-key").exists()
    release = publish(wheels["b"])
    stored = Path(release.wheel.path)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # changed after signing
    stored.write_bytes(bytes(data))
    command = finished(Command.objects.get(pk=queue_update(VERSION_B).json()["id"]), 60)
    assert command.status == "failed" and "SHA-256" in command.error and "refused" in command.error, command.error

    # The hub's key is replaced: the release is signed by a key the agent never pinned.
    release.delete()
    release_key.create(force=True)
    publish(wheels["b"])
    command = finished(Command.objects.get(pk=queue_update(VERSION_B).json()["id"]), 60)
    assert command.status == "failed", command.error
    assert "does not verify with the pinned release public key" in command.error
    assert status(e2e_relay.relay).version == VERSION_A
    assert not (tmp_path / "root" / "current").exists()
    assert agent.proc.poll() is None
    runs_a_command()


@pytest.mark.parametrize(("wheel", "version", "why"), [
    ("broken", VERSION_BROKEN, "exited with code 3 before it verified with the hub"),
    ("hanging", VERSION_HANGING, "did not verify with the hub within 8 s"),
])
def test_a_broken_b_is_rolled_back_within_the_deadline_and_the_command_fails_saying_why(
        update_hub, e2e_relay, start_agent, agent_a, wheels, tmp_path, wheel, version, why):
    agent = agent_a(start_agent, e2e_relay, update_hub, "--update-deadline", "8")
    wait_for(lambda: "self_update" in status(e2e_relay.relay).capabilities, 30, "the self_update capability")
    publish(wheels[wheel])
    began = time.monotonic()
    command = finished(Command.objects.get(pk=queue_update(version).json()["id"]), 90)
    assert command.status == "failed", (command.error, agent.output[-4000:])
    assert f"rolled back to {VERSION_A}" in command.error
    assert why in command.error
    assert time.monotonic() - began < 60
    assert not (tmp_path / "root" / "current").exists()
    assert agent.proc.poll() is None
    wait_for(lambda: status(e2e_relay.relay).version == VERSION_A, 10, "the old version")
    runs_a_command()


def test_no_self_update_refuses_every_update_whatever_the_hub_asks(
        update_hub, e2e_relay, start_agent, agent_a, wheels):
    agent_a(start_agent, e2e_relay, update_hub, "--no-self-update")
    caps = status(e2e_relay.relay).capabilities
    assert "packages" in caps and "self_update" not in caps
    release = publish(wheels["b"])
    response = queue_update(VERSION_B)
    assert response.status_code == 400 and "self_update" in str(response.json())
    # Queued behind the hub's check, straight into the queue: the agent still refuses it.
    forced = Command.objects.create(machine_id="e2e-machine", kind="update_agent", timeout_ms=60_000,
                                    command=agent_update.command_text(VERSION_B), agent_release=release.metadata())
    forced = finished(forced, 30)
    assert forced.status == "failed" and "--no-self-update" in forced.error
    assert status(e2e_relay.relay).version == VERSION_A
    runs_a_command()
