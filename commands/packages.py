"""Package commands (kind ``update_package``): install, remove or upgrade named packages on the target.

The relay agent detects the target's manager (apt-get, dnf, yum, apk or zypper), runs it
non-interactively with the names as arguments after ``--``, and reports per package the old and
the new version (relay_agent/packages.py). The hub checks the names against the grammar every
manager shares, so that a name that could be an option or shell text is a 400 naming it, and
refuses a package command for a machine with an enabled relay whose agent has not reported the
``packages`` capability. The agent checks the names again, with its manager's own rules.

On the wire a package command carries ``packages: {action, names}``. Its ``command`` is the
``package ACTION NAME...`` text operators see; to relays it is a line that fails with a clear
message, so that an agent that does not know the field (an original relay, an older relayhub agent
that somehow claims it) runs nothing. Under an ``allowed_commands`` policy, each package is matched
as ``package ACTION NAME`` (an entry ``package install nginx`` or ``package upgrade *``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers

from assignments.models import Capability, RelayAssignment
from commands.choices import CommandKind

MAX_PACKAGES = 50
# Installing takes longer than the usual command: the default timeout of a package command.
DEFAULT_TIMEOUT_MS = 600_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]{0,127}\Z")
ARCH = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,127}\Z")
WIRE_COMMAND = ("echo 'relayhub: this relay agent cannot run package commands (capability packages); "
                "update it' >&2; exit 127")
RUN_OPTION_FIELDS = ("working_directory", "environment", "run_as", "script", "secret_environment")


class PackageAction(models.TextChoices):
    INSTALL = "install"
    REMOVE = "remove"
    UPGRADE = "upgrade"


class PackagesModel(models.Model):
    # NAME[:ARCH][=VERSION], as given; empty for other kinds.
    packages = models.JSONField(default=list, blank=True)
    package_action = models.CharField(max_length=10, choices=PackageAction.choices, blank=True)
    # As the relay reported it: {"manager", "packages": [{name, action, old_version, new_version}]}.
    package_result = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_package_command(self) -> bool:
        return self.kind == CommandKind.UPDATE_PACKAGE

    def packages_wire(self) -> dict:
        if not self.is_package_command:
            return {}
        return {"command": WIRE_COMMAND, "packages": {"action": self.package_action, "names": list(self.packages)}}


def name_problem(text: str) -> str | None:
    """Why ``text`` is not ``NAME[:ARCH][=VERSION]``, or None."""
    shown = repr(text[:100])
    rest, equals, version = text.partition("=")
    name, colon, arch = rest.partition(":")
    if not NAME.match(name):
        return (f"{shown} is not a package name: it must start with a letter or digit and hold only letters, "
                "digits, '+', '.', '_' and '-' (then optionally :ARCH and =VERSION)")
    if colon and not ARCH.match(arch):
        return f"{shown}: the architecture after ':' is not one"
    if equals and not VERSION.match(version):
        return (f"{shown}: the version after '=' must start with a letter or digit and hold only letters, digits "
                "and '.+~:_-'")
    return None


def command_text(action: str, names: Iterable[str]) -> str:
    return " ".join(["package", action, *names])


class PackagesInput(serializers.Serializer):
    """The package fields as API input; mixed into the command serializer."""

    kind = serializers.ChoiceField([CommandKind.COMMAND, CommandKind.UPDATE_PACKAGE, CommandKind.UPDATE_AGENT],
                                   required=False, help_text=(
        "`command` (the default) runs `command` or `script`; `update_package` installs, removes or upgrades "
        "`packages`, with `package_action`; `update_agent` updates the relay agent to `agent_version`."))
    packages = serializers.ListField(child=serializers.CharField(max_length=300, trim_whitespace=False),
                                     required=False, max_length=MAX_PACKAGES, help_text=(
        "For update_package: package names, each NAME, NAME:ARCH (apt only) or NAME=VERSION."))
    package_action = serializers.ChoiceField(PackageAction.choices, required=False, allow_blank=True,
                                             help_text="For update_package: install, remove or upgrade.")


def clean(data: dict) -> dict:
    """Check the package fields of validated serializer data; a package command's text and default timeout set."""
    kind = data.get("kind") or CommandKind.COMMAND
    data["kind"] = kind
    names, action = data.get("packages") or [], data.get("package_action") or ""
    if kind != CommandKind.UPDATE_PACKAGE:
        if names or action:
            raise serializers.ValidationError({"kind": "packages and package_action are for kind update_package"})
        return data
    errors: dict[str, object] = {}
    if not names:
        errors["packages"] = "name at least one package"
    elif problems := [problem for name in names if (problem := name_problem(name))]:
        errors["packages"] = problems[:20]
    elif len({name.partition("=")[0].partition(":")[0] for name in names}) != len(names):
        errors["packages"] = "each package may be named once"
    elif action == PackageAction.REMOVE and any("=" in name for name in names):
        errors["packages"] = "remove takes package names without a version"
    if not action:
        errors["package_action"] = "install, remove or upgrade"
    if (data.get("command") or "").strip():
        errors["command"] = "a package command has no command text: it is made from package_action and packages"
    if any(data.get(name) for name in RUN_OPTION_FIELDS):
        errors["kind"] = "a package command takes no working directory, environment, run-as user or script"
    if errors:
        raise serializers.ValidationError(errors)
    data["command"] = command_text(action, names)
    data.setdefault("timeout_ms", DEFAULT_TIMEOUT_MS)
    return data


def unsupported_relays(machine_ids: Iterable[str]) -> list[str]:
    """Enabled relays of these machines whose agent has not said it runs package commands."""
    relays = RelayAssignment.objects.filter(machine_id__in=set(machine_ids), enabled=True).select_related("status")
    return sorted(relay.name for relay in relays
                  if Capability.PACKAGES not in (getattr(getattr(relay, "status", None), "capabilities", None) or []))


def require_support(machine_ids: Iterable[str], data: dict) -> None:
    """A 400 naming every enabled relay of the machines that would not understand a package command."""
    if data.get("kind") != CommandKind.UPDATE_PACKAGE:
        return
    if old := unsupported_relays(machine_ids):
        raise serializers.ValidationError({"packages": [
            f"relay {name!r} has not reported support for package commands (capability packages): "
            "update its relayhub agent, or disable it" for name in old[:20]]})


def checked(options: dict, machine_ids: Iterable[str]) -> dict:
    """For ``exec()`` and ``relay_exec``: the package command's fields (kind, packages, package_action and its
    command text), checked against the relays; Django's ValidationError, with messages per field, otherwise."""
    serializer = PackagesInput(data=options)
    try:
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        data = clean({**serializer.validated_data, "kind": CommandKind.UPDATE_PACKAGE, "timeout_ms": None})
        require_support(machine_ids, data)
    except serializers.ValidationError as exc:
        raise DjangoValidationError({name: [str(problem) for problem in (
            problems if isinstance(problems, list) else [problems])] for name, problems in exc.detail.items()}
        ) from None
    del data["timeout_ms"]  # the caller's
    return data


def copied(command: models.Model) -> dict:
    """What a rerun or a duplicate takes over of a package command (nothing of any other)."""
    if command.kind != CommandKind.UPDATE_PACKAGE:
        return {}
    return {"kind": command.kind, "packages": list(command.packages), "package_action": command.package_action}


class PackageOutcome(serializers.Serializer):
    name = serializers.CharField()
    action = serializers.ChoiceField(PackageAction.choices)
    old_version = serializers.CharField(allow_null=True, help_text="Installed before, or null if it was not.")
    new_version = serializers.CharField(allow_null=True, help_text="Installed after, or null if it is not.")


class PackageResult(serializers.Serializer):
    manager = serializers.CharField(help_text="The package manager the relay found on the target (apt-get, dnf...).")
    packages = PackageOutcome(many=True)


# -- the relay's report -----------------------------------------------------------------------------------------


class WirePackageOutcome(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    action = serializers.ChoiceField(PackageAction.choices)
    oldVersion = serializers.CharField(max_length=200, allow_null=True, required=False)
    newVersion = serializers.CharField(max_length=200, allow_null=True, required=False)


class WirePackageResult(serializers.Serializer):
    manager = serializers.CharField(max_length=20)
    packages = WirePackageOutcome(many=True, max_length=MAX_PACKAGES)


def outcome_text(command: models.Model) -> str:
    """A package command's outcome for the command page, a line per package; empty until its relay reports it."""
    result = command.package_result or {}
    lines = [f"{result['manager']}:"] if result.get("manager") else []
    for item in result.get("packages") or ():
        old, new = item.get("old_version"), item.get("new_version")
        change = "unchanged" if old == new else "installed" if old is None else "removed" if new is None else "changed"
        lines.append(f"{item['name']}: {old or 'not installed'} → {new or 'not installed'} ({change})")
    return "\n".join(lines)


def stored(report: dict) -> dict:
    """The relay's ``packageResult`` as the command keeps it (snake_case)."""
    return {"manager": report["manager"], "packages": [
        {"name": item["name"], "action": item["action"], "old_version": item.get("oldVersion"),
         "new_version": item.get("newVersion")} for item in report["packages"]]}
