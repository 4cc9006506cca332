"""Working directory, environment, run-as and scripts: values reach the command only as inert data."""

from __future__ import annotations

import os
import pwd
import shutil
import threading
import time
from pathlib import Path

import psutil
import pytest
from relay_agent import run_options
from relay_agent.executor import LocalExecutor
from relay_agent.run_options import OptionsRefused, RunOptions
from relay_agent.ssh import SSHPool

from .sshd import SSHServer
from .test_ssh import pool, store  # noqa: F401 - fixtures

INJECTIONS = ["; touch {marker}", "$(touch {marker})", "`touch {marker}`", "x\ntouch {marker}", "' ; touch {marker} '",
              "\"$(touch {marker})\"", "}\ntouch {marker}\n{"]


def run_local(options: RunOptions, command: str | list[str] | None = None, timeout_ms: int = 10_000, **kw):
    return LocalExecutor().run(options.entry_argv(), timeout_ms, stdin=options.launcher(command).encode(), **kw)


def parse(command: dict, allow_list: bool = False, run_as_users: list[str] | None = None) -> RunOptions:
    return run_options.parse(command, allow_list=allow_list, run_as_users=run_as_users)


@pytest.mark.parametrize("template", INJECTIONS)
def test_environment_values_are_inert(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    value = template.replace("{marker}", str(marker))
    options = parse({"environment": {"RELAYHUB_PARAM_NAME": value, "GREETING": "hi"}})

    result = run_local(options, 'printf "%s|%s" "$GREETING" "$RELAYHUB_PARAM_NAME"')

    assert result.status == "completed", result
    assert result.output == f"hi|{value}"
    assert not marker.exists()


@pytest.mark.parametrize("template", INJECTIONS)
def test_working_directory_and_script_text_are_inert(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    text = template.replace("{marker}", str(marker))
    directory = tmp_path / text.replace("/", "_")
    directory.mkdir()
    script = f"import os\nprint(os.getcwd())\nprint({text!r})\n"
    options = parse({"workingDirectory": str(directory), "script": script, "interpreter": "python3"})

    result = run_local(options)

    assert result.status == "completed", result
    assert result.output == f"{directory}\n{text}\n"
    assert not marker.exists()


def test_a_script_runs_as_a_file_by_its_interpreter_and_is_removed(tmp_path: Path) -> None:
    script = "#!/bin/false\nset -e\necho \"running $0\"\necho \"$0\" > " + str(tmp_path / "path") + "\nexit 3"
    result = run_local(parse({"script": script, "interpreter": "bash"}))

    assert result.status == "failed" and result.exit_code == 3
    path = (tmp_path / "path").read_text().strip()
    assert result.output == f"running {path}\n"
    assert not Path(path).exists(), "the script file must be removed after the run"


def test_a_script_reading_stdin_sees_nothing_not_the_rest_of_the_program() -> None:
    result = run_local(parse({"script": "cat\necho after\n"}))
    assert result.output == "after\n"

    result = run_local(parse({"environment": {"A": "1"}}), "cat; echo after")
    assert result.output == "after\n"


def test_a_script_with_a_line_like_a_heredoc_end_runs_whole() -> None:
    script = "echo one\nRELAYHUB_SCRIPT_END\nEOF\necho two\n"
    result = run_local(parse({"script": script}))
    assert "one\n" in result.output and result.output.endswith("two\n")


def test_a_missing_working_directory_fails_clearly(tmp_path: Path) -> None:
    result = run_local(parse({"workingDirectory": str(tmp_path / "nope")}), "echo should-not-run")
    assert result.exit_code == 126
    assert "cannot enter working directory" in result.stderr and "should-not-run" not in result.output


def test_an_allowed_argument_list_runs_unchanged_under_options(tmp_path: Path) -> None:
    result = run_local(parse({"environment": {"MY_VAR": "v"}}, allow_list=True), ["printf", "%s", "a b;$(x)"])
    assert result.output == "a b;$(x)"


def test_secret_values_never_show_in_the_process_list(tmp_path: Path) -> None:
    secret = "sentinel-secret-9d2f"
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for proc in psutil.process_iter(["cmdline"]):
                seen.append(" ".join(proc.info["cmdline"] or []))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_local(parse({"environment": {"TOKEN": secret}, "script": f"# {secret}\nsleep 0.3\n"}))
    finally:
        done.set()
        watcher.join()
    assert result.status == "completed"
    assert seen and not [line for line in seen if secret in line]


@pytest.mark.parametrize(("command", "allow_list", "users", "error"), [
    ({"workingDirectory": "relative/dir"}, False, None, "absolute path"),
    ({"workingDirectory": "/tmp"}, True, None, "allowed_commands"),
    ({"script": "echo hi"}, True, None, "scripts are not allowed"),
    ({"environment": {"LD_PRELOAD": "/tmp/x.so"}}, True, None, "LD_PRELOAD is not allowed"),
    ({"environment": {"PATH": "/tmp"}}, True, None, "PATH is not allowed"),
    ({"environment": {"BAD-NAME": "x"}}, False, None, "not a variable name"),
    ({"environment": {"A": 1}}, False, None, "must be text"),
    ({"environment": ["A=1"]}, False, None, "must be an object"),
    ({"runAs": "root"}, False, None, "not allowed by this relay's run_as policy"),
    ({"runAs": "root"}, False, ["postgres"], "not allowed by this relay's run_as policy"),
    ({"runAs": "-u root"}, False, ["-u root"], "runAs must be a user name"),
    ({"script": "x", "interpreter": "sh -c"}, False, None, "interpreter must be"),
])
def test_options_a_relay_must_not_run_are_refused(command: dict, allow_list: bool, users, error: str) -> None:
    with pytest.raises(OptionsRefused, match=error):
        parse(command, allow_list=allow_list, run_as_users=users)


def test_environment_without_an_allow_list_may_set_any_name() -> None:
    assert parse({"environment": {"PATH": "/usr/bin:/bin"}}).environment == {"PATH": "/usr/bin:/bin"}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"), reason="run-as needs root and sudo (CI has both)")
def test_run_as_runs_through_sudo_as_that_user_with_the_environment(tmp_path: Path) -> None:
    user = pwd.getpwnam("nobody").pw_name
    options = parse({"runAs": user, "environment": {"GREETING": "hello there"}, "workingDirectory": "/"},
                    run_as_users=[user])

    result = run_local(options, 'printf "%s %s %s" "$(id -un)" "$GREETING" "$(pwd)"')
    assert result.status == "completed", result
    assert result.output == f"{user} hello there /"

    script = run_local(parse({"runAs": user, "script": "import getpass; print(getpass.getuser())",
                              "interpreter": "python3"}, run_as_users=[user]))
    assert script.output == f"{user}\n", script


def test_over_ssh_the_script_runs_as_a_file_with_its_environment(pool: SSHPool, sshd: SSHServer) -> None:  # noqa: F811
    secret = "ssh-sentinel-77aa"
    options = parse({"environment": {"TOKEN": secret, "WEIRD": "$(echo no); `echo no`"},
                     "workingDirectory": "/", "script": "import os\nprint(os.getcwd(), os.environ['WEIRD'])\n"
                                                        "print(len(os.environ['TOKEN']))\nprint(__file__)",
                     "interpreter": "python3"})
    result = pool.run(sshd.host, sshd.port, sshd.user, options.entry_argv(), 10_000,
                      stdin=options.launcher(None).encode())

    assert result.status == "completed", result
    lines = result.output.splitlines()
    assert lines[:2] == ["/ $(echo no); `echo no`", str(len(secret))]
    assert lines[2].startswith("/tmp/")


def test_over_ssh_a_command_with_options_can_be_cancelled(pool: SSHPool, sshd: SSHServer) -> None:  # noqa: F811
    cancel = threading.Event()
    options = parse({"environment": {"A": "1"}})
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    result = pool.run(sshd.host, sshd.port, sshd.user, options.entry_argv(), 20_000, cancel=cancel,
                      stdin=options.launcher("sleep 15").encode())
    assert result.status == "cancelled"
    assert time.monotonic() - started < 8


def test_run_options_are_reported_only_to_a_hub_known_to_be_a_relayhub(tmp_path: Path) -> None:
    from relay_agent.hub import HubExtensions
    from relay_agent.status import StatusReporter
    from relay_agent.store import CredentialStore

    extensions = HubExtensions()
    reporter = StatusReporter(hub=None, store=CredentialStore(tmp_path / "store"), extensions=extensions)
    assert "run_options" not in reporter.status_body("r")["capabilities"], "the original hub knows three"
    extensions.hello_answered = True
    assert "run_options" in reporter.status_body("r")["capabilities"]
