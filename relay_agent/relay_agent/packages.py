"""Running a package command on its target, locally or over SSH.

The steps, each an ordinary run through the local executor or the SSH pool, within the command's one timeout:

1. Detect the manager: the first of apt-get, dnf, yum, apk and zypper on the target's PATH (a fixed
   shell line holding no value of the command), and whether the user is root (else ``sudo -n``).
   None found: the command fails with that reason, and nothing else runs.
2. Check every name against that manager's rules (``package_names``).
3. Query the installed versions (dpkg-query, rpm, apk's database).
4. Run the manager non-interactively, as an argument list with the names after ``--``: no shell
   locally, every argument quoted with shlex over SSH. Its output is the command's output, streamed.
5. Query the versions again; the result carries, per package, its name, action, old and new version.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import full_output
from .output import ExecResult
from .package_names import PackageRefused, PackageRequest, PackageSpec, check_for_manager

MANAGERS = ("apt-get", "dnf", "yum", "apk", "zypper")
FAMILIES = {"apt-get": "deb", "dnf": "rpm", "yum": "rpm", "zypper": "rpm", "apk": "apk"}
NO_MANAGER = ("no package manager found on the target: none of apt-get, dnf, yum, apk or zypper is on its PATH; "
              "package commands run only where one of them is")
DETECT = (
    "for m in " + " ".join(MANAGERS) + "; do p=$(command -v \"$m\" 2>/dev/null) && "
    "{ echo \"manager=$p\"; break; }; done; s=$(command -v sudo 2>/dev/null) && echo \"sudo=$s\"; "
    "echo \"uid=$(id -u 2>/dev/null)\""
)
# The version queries are quick; one after a manager that used the whole timeout may take this long beyond it.
QUERY_MIN_MS = 5000
ABSOLUTE = re.compile(r"(/[A-Za-z0-9._+-]+)+\Z")
APK_DB = "/lib/apk/db/installed"
APT_ENV = ["DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "NEEDRESTART_MODE=a"]
APT_OPTIONS = ["-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
               "-o", "Dpkg::Use-Pty=0", "-o", "APT::Color=0"]
SUBCOMMANDS = {
    "apt-get": {"install": ["install"], "remove": ["remove"], "upgrade": ["install", "--only-upgrade"]},
    "dnf": {"install": ["install"], "remove": ["remove"], "upgrade": ["upgrade"]},
    "yum": {"install": ["install"], "remove": ["remove"], "upgrade": ["update"]},
    "apk": {"install": ["add"], "remove": ["del"], "upgrade": ["upgrade"]},
    "zypper": {"install": ["install", "--auto-agree-with-licenses"], "remove": ["remove"], "upgrade": ["update"]},
}

# A step runs shell text (only DETECT) or an argument list, with a timeout in ms; `stream` sends its output live.
Step = Callable[[str | Sequence[str], int, bool], ExecResult]


@dataclass(frozen=True)
class Manager:
    name: str  # one of MANAGERS
    path: str
    sudo: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return FAMILIES[self.name]

    def argv(self, request: PackageRequest) -> list[str]:
        names = [self._argument(spec) for spec in request.packages]
        if self.name == "apt-get":
            program = ["env", *APT_ENV, self.path, *APT_OPTIONS]
        elif self.name in ("dnf", "yum"):
            program = [self.path, "-y"]
        elif self.name == "apk":
            program = [self.path, "--no-progress"]
        else:
            program = [self.path, "--non-interactive"]
        return [*self.sudo, *program, *SUBCOMMANDS[self.name][request.action], "--", *names]

    def _argument(self, spec: PackageSpec) -> str:
        if spec.version and self.family == "rpm" and self.name != "zypper":
            return f"{spec.name}-{spec.version}"  # dnf and yum take NAME-VERSION
        return str(spec)

    def query_argv(self, names: Sequence[str]) -> list[str]:
        if self.family == "deb":
            return ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Version}\n", "--", *names]
        if self.family == "rpm":
            return ["rpm", "-q", "--qf", "%{NAME}\t-\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n", "--", *names]
        return ["cat", "--", APK_DB]

    def versions(self, output: str, names: Sequence[str]) -> dict[str, str | None]:
        """Installed version by name, None when not installed, from what ``query_argv`` printed."""
        found: dict[str, str] = {}
        if self.family == "apk":
            package = None
            for line in output.splitlines():
                if line.startswith("P:"):
                    package = line[2:]
                elif line.startswith("V:") and package in names:
                    found.setdefault(package, line[2:])
        else:
            for line in output.splitlines():
                fields = line.split("\t")
                # dpkg: the second letter of the status is 'i' only for an installed package.
                if len(fields) == 3 and fields[2] and (self.family == "rpm" or fields[1][1:2] == "i"):
                    found.setdefault(fields[0], fields[2])
        return {name: found.get(name) for name in names}


def detect(output: str) -> Manager | None:
    """The manager DETECT reported, with ``sudo -n`` in front when the user is not root and sudo is there."""
    facts = dict(line.partition("=")[::2] for line in output.splitlines() if "=" in line)
    path, sudo = facts.get("manager", ""), facts.get("sudo", "")
    name = path.rsplit("/", 1)[-1]
    if not ABSOLUTE.match(path) or name not in MANAGERS:
        return None
    prefix = (sudo, "-n", "--") if facts.get("uid") != "0" and ABSOLUTE.match(sudo) else ()
    return Manager(name, path, prefix)


def run(request: PackageRequest, step: Step, timeout_ms: int) -> ExecResult:
    started = time.monotonic()
    deadline = started + timeout_ms / 1000

    def left() -> int:
        return int((deadline - time.monotonic()) * 1000)

    def quiet(command: str | Sequence[str]) -> ExecResult:
        with full_output.keeping(None):  # only the manager's own output is the command's
            return step(command, max(QUERY_MIN_MS, left()), False)

    def versions(names: list[str]) -> dict[str, str | None] | None:
        queried = quiet(manager.query_argv(names))
        if queried.status in ("timeout", "cancelled") or queried.error:
            return None
        return manager.versions(queried.output, names)

    def ended(result: ExecResult) -> ExecResult:
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    found = quiet(DETECT)
    if found.status in ("timeout", "cancelled"):
        return ended(found)
    if found.status != "completed":
        return ended(ExecResult.refused(f"package manager detection failed: {found.error or found.stderr.strip()}"))
    manager = detect(found.output)
    if manager is None:
        return ended(ExecResult.refused(NO_MANAGER))
    try:
        check_for_manager(request, manager.family)
    except PackageRefused as exc:
        return ended(ExecResult.refused(str(exc)))
    names = [spec.name for spec in request.packages]
    before = versions(names)
    if left() <= 0:
        return ended(ExecResult(status="timeout", error=f"execution timed out after {timeout_ms} ms"))
    result = step(manager.argv(request), left(), True)
    if result.status in ("timeout", "cancelled"):
        return ended(result)
    after = versions(names)
    if before is None or after is None:
        result.error = "the installed versions could not be read" + (f"; {result.error}" if result.error else "")
    result.packages = {"manager": manager.name, "packages": [
        {"name": name, "action": request.action, "oldVersion": (before or {}).get(name),
         "newVersion": (after or {}).get(name)} for name in names]}
    return ended(result)
