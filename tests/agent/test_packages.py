"""Package commands in the agent: names checked before anything runs, the manager detected on the target,
an argument list with the names after `--`, the allow-list applied per package, and a target without a
package manager refused, locally and over SSH (real processes, a real sshd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_agent import packages
from relay_agent.agent import Agent
from relay_agent.allowlist import REFUSED
from relay_agent.package_names import PackageRefused, check_for_manager, parse_request, parse_spec
from relay_agent.results import ResultDelivery
from relay_agent.settings import AgentSettings
from relay_agent.slots import RunningCommand

from .sshd import SSHDUnavailable, SSHServer, run_sshd

BAD_NAMES = ["-oAPT::Get::Trivial-Only=false", "--help", "-y", ";rm", "hello;rm -rf /", "$(x)", "`x`", "a b",
             "hello\nrm", "hello\n", "", "x|y", "x&y", "x>y", "../x", "/usr/bin/x", "x*", "x?", "'x'", '"x"',
             "hello=", "hello:", "hello=-1", "hello:-x", "hello=1;rm", "hello=$(x)", "é", "x" * 129]
GOOD_NAMES = ["hello", "libc6:amd64", "nginx=1.24.0-1~bookworm", "g++", "python3-yaml", "perl-Net-SSLeay",
              "libstdc++6:i386=12.2.0-14", "kernel-default=1:5.14.21"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_could_be_options_or_shell_are_refused(name: str) -> None:
    with pytest.raises(PackageRefused) as refused:
        parse_spec(name)
    assert repr(name[:100]) in str(refused.value) or not name


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_ordinary_names_versions_and_architectures_pass(name: str) -> None:
    assert str(parse_spec(name)) == name


@pytest.mark.parametrize(("wanted", "error"), [
    ({"action": "purge", "names": ["hello"]}, "package action must be one of install, remove, upgrade"),
    ({"action": "install", "names": []}, "a list of 1 to 50"),
    ({"action": "install", "names": "hello"}, "a list of 1 to 50"),
    ({"action": "install", "names": ["hello", "hello=1"]}, "named once"),
    ({"action": "remove", "names": ["hello=2.10"]}, "without a version"),
    ({"action": "install", "names": [["hello"]]}, "must be strings"),
    ("install hello", "must be an object"),
])
def test_malformed_requests_are_refused(wanted, error: str) -> None:
    with pytest.raises(PackageRefused, match=error):
        parse_request(wanted)


def test_each_family_applies_its_own_rules() -> None:
    with pytest.raises(PackageRefused, match="not a deb package name"):
        check_for_manager(parse_request({"action": "install", "names": ["Perl-X"]}), "deb")
    with pytest.raises(PackageRefused, match="not a deb package name"):
        check_for_manager(parse_request({"action": "install", "names": ["x"]}), "deb")
    with pytest.raises(PackageRefused, match="for apt targets only"):
        check_for_manager(parse_request({"action": "install", "names": ["zlib:amd64"]}), "rpm")
    check_for_manager(parse_request({"action": "install", "names": ["perl-Net-SSLeay"]}), "rpm")


@pytest.mark.parametrize(("manager", "expected"), [
    ("apt-get", ["env", "DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "NEEDRESTART_MODE=a",
                 "/usr/bin/apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o",
                 "Dpkg::Options::=--force-confold", "-o", "Dpkg::Use-Pty=0", "-o", "APT::Color=0",
                 "install", "--only-upgrade", "--", "hello=2.10-3", "sl"]),
    ("dnf", ["/usr/bin/dnf", "-y", "upgrade", "--", "hello-2.10-3", "sl"]),
    ("yum", ["/usr/bin/yum", "-y", "update", "--", "hello-2.10-3", "sl"]),
    ("apk", ["/usr/bin/apk", "--no-progress", "upgrade", "--", "hello=2.10-3", "sl"]),
    ("zypper", ["/usr/bin/zypper", "--non-interactive", "update", "--", "hello=2.10-3", "sl"]),
])
def test_each_manager_runs_non_interactively_with_the_names_after_the_options(manager: str, expected) -> None:
    request = parse_request({"action": "upgrade", "names": ["hello=2.10-3", "sl"]})
    assert packages.Manager(manager, f"/usr/bin/{manager}").argv(request) == expected


def test_detection_reads_an_absolute_manager_and_adds_sudo_for_other_users() -> None:
    assert packages.detect("uid=\n") is None
    assert packages.detect("manager=apt-get\nuid=0\n") is None  # not a path: an alias or a function
    assert packages.detect("manager=/opt/bin/pacman\nuid=0\n") is None
    root = packages.detect("manager=/usr/bin/dnf\nsudo=/usr/bin/sudo\nuid=0\n")
    assert root == packages.Manager("dnf", "/usr/bin/dnf")
    user = packages.detect("manager=/sbin/apk\nsudo=/usr/bin/sudo\nuid=1000\n")
    assert user.argv(parse_request({"action": "remove", "names": ["sl"]}))[:4] == ["/usr/bin/sudo", "-n", "--",
                                                                                     "/sbin/apk"]


def test_versions_are_read_from_each_query_format() -> None:
    deb = packages.Manager("apt-get", "/usr/bin/apt-get")
    assert deb.versions("bash\tii \t5.2.15-2+b8\ncowsay\tun \t\nold\trc \t1.0\n", ["bash", "cowsay", "old", "x"]) \
        == {"bash": "5.2.15-2+b8", "cowsay": None, "old": None, "x": None}
    rpm = packages.Manager("dnf", "/usr/bin/dnf")
    assert rpm.versions("bash\t-\t5.2.26-3.fc40\npackage sl is not installed\n", ["bash", "sl"]) \
        == {"bash": "5.2.26-3.fc40", "sl": None}
    apk = packages.Manager("apk", "/sbin/apk")
    assert apk.versions("C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:sl\nV:5.02-r1\n", ["sl", "curl"]) \
        == {"sl": "5.02-r1", "curl": None}


# -- through the agent's own path from a claimed command to processes ---------------------------------------


@pytest.fixture
def agent(store_dir: Path) -> Iterator[Agent]:
    agent = Agent(AgentSettings(api_key="rly_unused", hub_url="http://127.0.0.1:9", store_dir=store_dir))
    yield agent
    agent.ssh.close()
    agent.close()


def execute(agent: Agent, names: list[str], action: str = "install", **command) -> object:
    wire = {"_id": "c-1", "command": "exit 127", "timeoutMs": 20_000, "packages": {"action": action, "names": names},
            **command}
    return agent.execute(wire, RunningCommand("c-1", None))


def test_a_bad_name_fails_the_command_before_anything_runs(agent: Agent, tmp_path: Path) -> None:
    marker = tmp_path / "p"
    result = execute(agent, ["hello", f"$(touch {marker})"])
    assert (result.status, result.exit_code, result.packages) == ("failed", None, None)
    assert "is not a package name" in result.error
    assert not marker.exists()


def test_the_allow_list_applies_to_each_package(agent: Agent) -> None:
    agent.config.apply("allowed_commands", {"commands": ["package install sl", "uptime"]})
    result = execute(agent, ["sl", "hello"])
    assert (result.status, result.exit_code) == ("failed", None)
    assert result.error == f"package install hello: {REFUSED}: no entry matches"

    agent.config.apply("allowed_commands", {"commands": ["package remove *"]})
    result = execute(agent, ["sl"])
    assert result.error == f"package install sl: {REFUSED}: no entry matches"


def test_run_options_are_not_for_package_commands(agent: Agent) -> None:
    result = execute(agent, ["hello"], environment={"DEBIAN_FRONTEND": "readline"})
    assert result.status == "failed" and "takes no working directory" in result.error


def test_a_local_target_without_a_package_manager_is_refused(agent: Agent, monkeypatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the agent's own PATH, inherited by the real /bin/sh it starts
    result = execute(agent, ["hello"])
    assert (result.status, result.exit_code, result.packages) == ("failed", None, None)
    assert result.error == packages.NO_MANAGER


def test_an_ssh_target_without_a_package_manager_is_refused(agent: Agent, tmp_path: Path) -> None:
    try:
        server_context = run_sshd(tmp_path / "sshd", set_env=["PATH=/nowhere"])
        sshd: SSHServer = server_context.__enter__()
    except SSHDUnavailable as exc:
        pytest.skip(f"no sshd: {exc}")
    try:
        agent.store.put("sshd-key", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")
        agent.config.apply("ssh_targets", {"targets": [{"host": sshd.host, "port": sshd.port,
                                                        "hostKey": sshd.host_key}]})
        result = execute(agent, ["hello"], targetType="ssh", targetHost=sshd.host, targetPort=sshd.port,
                         targetUsername=sshd.user)
    finally:
        server_context.__exit__(None, None, None)
    assert (result.status, result.exit_code) == ("failed", None)
    assert result.error == packages.NO_MANAGER


def test_the_result_body_carries_the_package_outcome_only_to_a_relayhub() -> None:
    from relay_agent.output import ExecResult

    outcome = {"manager": "apt-get", "packages": [{"name": "sl", "action": "install", "oldVersion": None,
                                                   "newVersion": "5.02-1"}]}
    result = ExecResult(status="completed", exit_code=0, packages=outcome)
    body = ResultDelivery.result_body(None, RunningCommand("c-1", 3), result)  # type: ignore[arg-type]
    assert body["packageResult"] == outcome
    assert "packageResult" not in ResultDelivery.result_body(None, RunningCommand("c-1", None), result)  # type: ignore[arg-type]


def test_the_packages_capability_is_reported_only_to_a_hub_known_to_be_a_relayhub(tmp_path: Path) -> None:
    from relay_agent.hub import HubExtensions
    from relay_agent.status import StatusReporter
    from relay_agent.store import CredentialStore

    extensions = HubExtensions()
    reporter = StatusReporter(hub=None, store=CredentialStore(tmp_path / "store"), extensions=extensions)
    assert "packages" not in reporter.status_body("r")["capabilities"], "the original hub knows three"
    extensions.hello_answered = True
    assert "packages" in reporter.status_body("r")["capabilities"]
