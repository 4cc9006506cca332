"""Working directory, environment, run-as user and scripts: how a command runs, apart from what it runs.

None of these values ever becomes part of a command line. When any option is given, the agent
writes a small shell program (every value quoted with shlex.quote) and feeds it on the standard
input of ``sh -s``, run through ``sudo -n -u USER`` when a run-as user is asked for. So secrets in
the environment or the script never show in a process list, locally or on an SSH target. The
program is one ``{ ...; } </dev/null`` group: the shell parses all of it before running any of
it, so a command that reads its standard input sees /dev/null, never the rest of the program.

A script is written to a private ``mktemp`` file by the user it runs as, run by the named
interpreter as a file (never pasted into ``sh -c``) and removed afterwards.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")
INTERPRETER = re.compile(r"(/[A-Za-z0-9._+-]+)+\Z|[A-Za-z0-9._+-]+\Z")
MAX_ENV = 100
MAX_VALUE_BYTES = 32 * 1024
MAX_SCRIPT_BYTES = 1024 * 1024
MAX_PATH = 4096

# While a relay has an allow-list, these could change what an allowed program does (a PATH that
# finds another `systemctl`, a preloaded library), so they are refused there.
UNSAFE_ENV = frozenset({
    "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "CDPATH",
    "GLOBIGNORE", "HOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5LIB", "PERL5OPT",
    "PERLLIB", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS", "NODE_PATH", "GCONV_PATH", "LOCALDOMAIN",
    "HOSTALIASES", "RES_OPTIONS", "TMPDIR", "SUDO_ASKPASS", "SUDO_EDITOR", "EDITOR", "VISUAL", "PAGER",
})
UNSAFE_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "MALLOC_", "GLIBC_")


class OptionsRefused(ValueError):
    """The command must not run; str() is the error to fail it with."""


@dataclass(frozen=True)
class RunOptions:
    working_directory: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    run_as: str | None = None
    script: str | None = None
    interpreter: str = "sh"

    @property
    def any(self) -> bool:
        return bool(self.working_directory or self.environment or self.run_as or self.script is not None)

    def entry_argv(self) -> list[str]:
        """The program that reads ``launcher()`` on its standard input."""
        shell = ["/bin/sh", "-s"]
        return ["sudo", "-n", "-u", self.run_as, "--", *shell] if self.run_as else shell

    def launcher(self, command: str | Sequence[str] | None) -> str:
        """The shell program that sets up and runs ``command`` (shell text or an argument list) or the script."""
        lines = ["{"]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in self.environment.items()]
        if self.working_directory:
            path = shlex.quote(self.working_directory)
            lines.append(f"cd -- {path} || {{ echo \"relayhub: cannot enter working directory\" {path} >&2; exit 126; }}")
        if self.script is not None:
            delimiter = _delimiter(self.script)
            lines += [
                'relayhub_script=$(mktemp) || exit 125',
                "trap 'rm -f -- \"$relayhub_script\"' EXIT",
                "trap 'exit 143' HUP INT TERM",
                f"cat > \"$relayhub_script\" <<'{delimiter}'",
                self.script[:-1] if self.script.endswith("\n") else self.script,
                delimiter,
                f'{shlex.quote(self.interpreter)} "$relayhub_script"',
            ]
        elif isinstance(command, str):
            lines.append(f"eval {shlex.quote(command)}")
        elif command is not None:
            lines.append(shlex.join(command))
        lines.append("} </dev/null")
        return "\n".join(lines) + "\n"


def _delimiter(script: str) -> str:
    import secrets  # on use: through hmac it loads OpenSSL's libcrypto

    lines = set(script.splitlines())
    while True:
        delimiter = f"RELAYHUB_SCRIPT_END_{secrets.token_hex(16)}"
        if delimiter not in lines:
            return delimiter


def parse(command: dict[str, Any], *, allow_list: bool, run_as_users: Sequence[str] | None) -> RunOptions:
    """The run options of a wire command; OptionsRefused naming the field when one is malformed or not allowed."""
    working_directory = command.get("workingDirectory") or None
    environment = command.get("environment") or {}
    run_as = command.get("runAs") or None
    script = command.get("script")
    interpreter = command.get("interpreter") or "sh"
    if working_directory is not None:
        if not isinstance(working_directory, str) or not working_directory.startswith("/") \
                or "\0" in working_directory or len(working_directory) > MAX_PATH:
            raise OptionsRefused("workingDirectory must be an absolute path")
        if allow_list:
            raise OptionsRefused("a working directory is not allowed while the relay has an allowed_commands policy")
    _check_environment(environment, allow_list)
    if run_as is not None:
        if not isinstance(run_as, str) or not USER_NAME.match(run_as):
            raise OptionsRefused("runAs must be a user name (lower case letters, digits, '_', '.', '-')")
        if run_as not in (run_as_users or ()):
            raise OptionsRefused(f"run-as user {run_as!r} not allowed by this relay's run_as policy")
    if script is not None:
        if not isinstance(script, str) or "\0" in script or len(script.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
            raise OptionsRefused(f"script must be text of at most {MAX_SCRIPT_BYTES} bytes")
        if allow_list:
            raise OptionsRefused("scripts are not allowed while the relay has an allowed_commands policy")
    if not isinstance(interpreter, str) or not INTERPRETER.match(interpreter):
        raise OptionsRefused("interpreter must be a program name or an absolute path")
    return RunOptions(working_directory, dict(environment), run_as, script, interpreter)


def _check_environment(environment: Any, allow_list: bool) -> None:
    if not isinstance(environment, dict) or len(environment) > MAX_ENV:
        raise OptionsRefused(f"environment must be an object of at most {MAX_ENV} variables")
    for name, value in environment.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise OptionsRefused(f"environment: {name!r} is not a variable name")
        if value is None:
            raise OptionsRefused(f"environment: {name} has no value (the hub could not read its secret)")
        if not isinstance(value, str) or "\0" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise OptionsRefused(f"environment: {name} must be text of at most {MAX_VALUE_BYTES} bytes")
        if allow_list and (name in UNSAFE_ENV or name.startswith(UNSAFE_PREFIXES)):
            raise OptionsRefused(f"environment: {name} is not allowed while the relay has an allowed_commands policy")
