"""Package commands on the wire, and the names they may carry.

A package command (the hub's ``update_package`` kind, capability ``packages``) carries
``"packages": {"action": "install" | "remove" | "upgrade", "names": [...]}``. Each name is
``NAME[:ARCH][=VERSION]`` and is checked twice: on the hub, against the grammar every package
manager shares, and here again, first against the same grammar and then, once the target's manager
is known, against that manager's own rules. So a name can never carry an option (a leading ``-``)
or shell syntax: it holds only letters, digits and ``+ . _ -`` (and ``~ :`` in a version), and it
goes to the manager as an argument after ``--``, never as shell text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ACTIONS = ("install", "remove", "upgrade")
MAX_PACKAGES = 50

# What every manager's names share; the hub checks the same grammar (commands/packages.py).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]{0,127}\Z")
ARCH = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,127}\Z")

# Each family's own rules for a name.
DEBIAN_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")  # Debian policy 5.6.1: lower case, at least two characters
RPM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*\Z")
APK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*\Z")


class PackageRefused(ValueError):
    """The package command must not run; str() is the error to fail it with."""


@dataclass(frozen=True)
class PackageSpec:
    name: str
    arch: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return self.name + (f":{self.arch}" if self.arch else "") + (f"={self.version}" if self.version else "")


@dataclass(frozen=True)
class PackageRequest:
    action: str
    packages: tuple[PackageSpec, ...]

    def policy_lines(self) -> list[str]:
        """How each package is matched against an allowed_commands policy: ``package ACTION NAME``."""
        return [f"package {self.action} {spec}" for spec in self.packages]


def parse_spec(text: Any) -> PackageSpec:
    """``NAME[:ARCH][=VERSION]`` checked against the shared grammar; PackageRefused naming it otherwise."""
    if not isinstance(text, str):
        raise PackageRefused(f"package names must be strings, not {type(text).__name__}")
    shown = repr(text[:100])
    rest, equals, version = text.partition("=")
    name, colon, arch = rest.partition(":")
    if not NAME.match(name):
        raise PackageRefused(f"{shown} is not a package name: it must start with a letter or digit and hold only "
                             "letters, digits, '+', '.', '_' and '-'")
    if colon and not ARCH.match(arch):
        raise PackageRefused(f"{shown}: the architecture after ':' is not one")
    if equals and not VERSION.match(version):
        raise PackageRefused(f"{shown}: the version after '=' must start with a letter or digit and hold only "
                             "letters, digits and '.+~:_-'")
    return PackageSpec(name, arch or None, version or None)


def parse_request(value: Any) -> PackageRequest:
    """The ``packages`` field of a wire command; PackageRefused when it is malformed."""
    if not isinstance(value, dict):
        raise PackageRefused("packages must be an object {action, names}")
    action, names = value.get("action"), value.get("names")
    if action not in ACTIONS:
        raise PackageRefused(f"package action must be one of {', '.join(ACTIONS)}, not {str(action)[:40]!r}")
    if not isinstance(names, list) or not names or len(names) > MAX_PACKAGES:
        raise PackageRefused(f"packages needs names: a list of 1 to {MAX_PACKAGES} package names")
    specs = tuple(parse_spec(name) for name in names)
    if len({spec.name for spec in specs}) != len(specs):
        raise PackageRefused("each package may be named once")
    if action == "remove" and any(spec.version for spec in specs):
        raise PackageRefused("remove takes package names without a version")
    return PackageRequest(action, specs)


def check_for_manager(request: PackageRequest, family: str) -> None:
    """The manager family's own naming rules (``deb``, ``rpm``, ``apk``); PackageRefused naming the first misfit."""
    rule = {"deb": DEBIAN_NAME, "rpm": RPM_NAME, "apk": APK_NAME}[family]
    for spec in request.packages:
        if not rule.match(spec.name):
            why = ("lower case letters, digits, '+', '.' and '-', at least two" if family == "deb"
                   else "letters, digits, '+', '.', '_' and '-'")
            raise PackageRefused(f"{spec.name!r} is not a {family} package name ({why})")
        if spec.arch and family != "deb":
            raise PackageRefused(f"{str(spec)!r}: ':arch' is for apt targets only")
