"""Package commands end to end: the real hub, a real relay-agent process, and apt on this machine.

A tiny Debian package that is not installed (hello, else sl) is installed and then removed through
the API, and the versions the relay reports are checked against dpkg's own. The test leaves the
package as it found it (not installed). It needs root and apt with package lists that know the
package; CI runs as root and does `apt-get update` first. Without a package manager on the agent's
PATH, or under an allow-list without the package, the command fails and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from assignments.models import RelayStatus
from commands.models import Command
from configpush.models import ConfigPush
from relay_agent.packages import NO_MANAGER
from tests.conftest import api_client_for
from tests.e2e.processes import finished, wait_for
from tests.e2e.test_relay_exec import relay_exec
from tests.e2e.test_run_options import settled

FAST = ("--long-poll-wait", "500")
CANDIDATES = ("hello", "sl")


def installed_version(name: str) -> str | None:
    shown = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Version}", "--", name],
                           capture_output=True, text=True, check=False).stdout
    status, _, version = shown.partition("\t")
    return version if status[1:2] == "i" else None


def candidate(name: str) -> str | None:
    """The version apt would install, or None when its package lists do not know the package."""
    policy = subprocess.run(["apt-cache", "policy", "--", name], capture_output=True, text=True, check=False).stdout
    for line in policy.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            return None if version == "(none)" else version
    return None


@pytest.fixture
def package() -> str:
    """A package apt can install here and that is not installed; removed again, whatever the test did."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("installing with apt needs root and apt-get (CI has both)")
    free = [name for name in CANDIDATES if installed_version(name) is None]
    if not free:
        pytest.skip(f"{' and '.join(CANDIDATES)} are installed already; the test would remove them")
    name = free[0]
    if candidate(name) is None:
        pytest.skip(f"apt cannot install {name}: its package lists do not know it (run apt-get update; "
                    "CI does, and has a mirror)")
    yield name
    if installed_version(name) is not None:
        subprocess.run(["apt-get", "-y", "-q", "remove", "--", name], capture_output=True, check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def capable(relay) -> bool:
    return "packages" in RelayStatus.objects.get(relay=relay).capabilities


@pytest.fixture
def operator(transactional_db):
    from django.contrib.auth.models import User

    return api_client_for(User.objects.create_superuser("root-op", password="pw-root-123456"))


def queue(operator, action: str, *names: str, timeout_ms: int = 300_000) -> Command:
    response = operator.post("/api/v1/commands/", {"machine_id": "e2e-machine", "kind": "update_package",
                                                   "package_action": action, "packages": list(names),
                                                   "timeout_ms": timeout_ms}, format="json")
    assert response.status_code == 201, response.json()
    return Command.objects.get(pk=response.json()["id"])


def test_apt_installs_then_removes_a_package_and_reports_its_versions(hub, e2e_relay, start_agent, operator,
                                                                       package: str) -> None:
    start_agent(e2e_relay, hub, *FAST)
    wait_for(lambda: capable(e2e_relay.relay), 15, "the agent's packages capability")

    install = finished(queue(operator, "install", package), timeout=300)
    assert install.status == "completed", (install.error, install.stderr[-2000:])
    version = installed_version(package)
    assert version is not None
    assert install.package_result == {"manager": "apt-get", "packages": [
        {"name": package, "action": "install", "old_version": None, "new_version": version}]}
    assert f"Setting up {package}" in install.output

    again = finished(queue(operator, "install", package), timeout=120)
    assert again.status == "completed"
    assert again.package_result["packages"][0] == {"name": package, "action": "install",
                                                         "old_version": version, "new_version": version}

    # The same through relay_exec, which follows the output and prints the versions.
    proc = relay_exec("e2e-machine", "--package", f"remove:{package}")
    out, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, errors
    assert f"Removing {package}" in out
    assert f"{package}: {version} → not installed (removed)" in errors
    assert installed_version(package) is None
    remove = Command.objects.get(kind="update_package", package_action="remove")
    assert remove.package_result == {"manager": "apt-get", "packages": [
        {"name": package, "action": "remove", "old_version": version, "new_version": None}]}
    shown = operator.get(f"/api/v1/commands/{remove.pk}/").json()
    assert shown["package_result"]["packages"][0]["old_version"] == version


def test_a_target_without_a_package_manager_fails_saying_so(hub, e2e_relay, start_agent, operator,
                                                            tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # The agent's PATH is what its local commands search; the agent itself starts by its absolute path.
    start_agent(e2e_relay, hub, *FAST, env={"PATH": str(empty)})
    wait_for(lambda: capable(e2e_relay.relay), 15, "the agent's packages capability")

    command = finished(queue(operator, "install", "hello", timeout_ms=20_000), timeout=30)

    assert (command.status, command.exit_code, command.package_result) == ("failed", None, None)
    assert command.error == NO_MANAGER


def test_the_allowed_commands_policy_refuses_a_package_it_does_not_list(hub, e2e_relay, start_agent,
                                                                        operator) -> None:
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="allowed_commands",
                                     payload={"commands": ["uptime", "package remove *"]})
    start_agent(e2e_relay, hub, *FAST)
    assert settled(push) == "acked"
    wait_for(lambda: capable(e2e_relay.relay), 15, "the agent's packages capability")

    command = finished(queue(operator, "install", "hello", timeout_ms=20_000), timeout=30)

    assert (command.status, command.exit_code, command.output) == ("failed", None, "")
    assert command.error == ("package install hello: command not allowed by this relay's allowed_commands policy: "
                             "no entry matches")


def test_relay_exec_refuses_a_bad_package_name_before_queueing(transactional_db) -> None:
    proc = relay_exec("m", "--queue-if-offline", "--package", "install:-oAPT::Get::Trivial-Only=false")
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "'-oAPT::Get::Trivial-Only=false' is not a package name" in errors
    assert "Traceback" not in errors and not Command.objects.exists()

    proc = relay_exec("m", "--package", "install:hello", "--", "uptime")
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "no command after --" in errors
