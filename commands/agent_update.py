"""Agent updates (kind ``update_agent``): a relay replaces its own agent with a signed release.

The command names a release (``agentupdates.AgentRelease``); it keeps a copy of the release's
metadata (version, sha256, signature), which is what the relay gets on the wire as
``agentUpdate: {version, sha256, signature, size, url}``. The relay downloads the wheel from
``url`` with its key, checks the SHA-256 and the Ed25519 signature with the release key it pinned,
installs it beside the running version, restarts into it and reports the result once the new
version has verified with the hub, or rolls back and reports the command failed (relay_agent/selfupdate.py).

Who may: ``configure_relay`` on every enabled relay of the machine (changing what a relay runs is
configuring it; ``run_command`` alone is refused with 403). Only relays reporting the ``self_update``
capability get one (a 400 names the others), and a relay pinned to another version, by its own
``agent_version_pin`` or by a label pin (``agentupdates.pins``), refuses it (400). Its ``command`` is a line that fails on an agent without the extension.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from rest_framework import exceptions, serializers

from agentupdates import pins
from agentupdates.models import AgentRelease
from assignments import access
from assignments.models import Capability, RelayAssignment
from commands.choices import CommandKind, TargetType

DEFAULT_TIMEOUT_MS = 600_000
WIRE_COMMAND = ("echo 'relayhub: this relay agent cannot update itself (capability self_update); update it by "
                "hand' >&2; exit 127")
OTHER_FIELDS = ("working_directory", "environment", "run_as", "script", "secret_environment", "target_host",
                "packages", "package_action")


class AgentUpdateModel(models.Model):
    # The release as queued: {"version", "sha256", "signature", "filename", "size"}; null for other kinds.
    agent_release = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_agent_update(self) -> bool:
        return bool(self.agent_release)

    def agent_update_wire(self) -> dict:
        release = self.agent_release
        if not release:
            return {}
        return {"command": WIRE_COMMAND, "agentUpdate": {
            "version": release["version"], "sha256": release["sha256"], "signature": release["signature"],
            "size": release.get("size"), "url": f"/relay/agent-releases/{release['version']}/wheel"}}


class AgentUpdateInput(serializers.Serializer):
    agent_version = serializers.CharField(required=False, allow_blank=True, max_length=64, write_only=True,
                                          help_text="For update_agent: the release to update the relay agent to.")


def command_text(version: str) -> str:
    return f"agent update {version}"


def clean(data: dict) -> dict:
    """Check an update_agent command's fields (the release exists); its text, timeout and release copy set."""
    version = data.pop("agent_version", "") or ""
    if data.get("kind") != CommandKind.UPDATE_AGENT:
        if version:
            raise serializers.ValidationError({"agent_version": "agent_version is for kind update_agent"})
        return data
    errors: dict[str, object] = {}
    release = AgentRelease.objects.filter(version=version).first() if version else None
    if not version:
        errors["agent_version"] = "name the release to update to"
    elif release is None:
        errors["agent_version"] = f"there is no agent release {version[:64]!r} (publish_agent or the admin upload)"
    if (data.get("command") or "").strip():
        errors["command"] = "an agent update has no command text"
    if data.get("target_type", TargetType.LOCAL) != TargetType.LOCAL or any(data.get(n) for n in OTHER_FIELDS):
        errors["kind"] = "an agent update runs on the relay itself: no SSH target, options, script or packages"
    if errors:
        raise serializers.ValidationError(errors)
    data["command"] = command_text(version)
    data["agent_release"] = release.metadata()
    data.setdefault("timeout_ms", DEFAULT_TIMEOUT_MS)
    return data


def refusals(machine_ids: Iterable[str], version: str) -> list[str]:
    """Why enabled relays of these machines would not take an update to ``version``: capability, pin."""
    relays = RelayAssignment.objects.filter(machine_id__in=set(machine_ids), enabled=True).select_related("status")
    problems = []
    by_label = pins.label_pins()
    for relay in sorted(relays, key=lambda r: r.name):
        capabilities = getattr(getattr(relay, "status", None), "capabilities", None) or []
        if Capability.SELF_UPDATE not in capabilities:
            problems.append(f"relay {relay.name!r} has not reported support for self-update (capability "
                            "self_update): it was started with --no-self-update, or its agent is too old")
        else:
            problems.extend(pins.conflicts(relay, version, by_label))
    return problems


def require_allowed(user, machine_ids: Iterable[str], data: dict) -> None:
    """403 without configure_relay on every enabled relay of the machines; 400 for capability or pin."""
    if data.get("kind") != CommandKind.UPDATE_AGENT:
        return
    machine_ids = set(machine_ids)
    relay_ids = RelayAssignment.objects.filter(machine_id__in=machine_ids, enabled=True).values_list("pk", flat=True)
    if not user.has_perm(access.CONFIGURE) and not (relay_ids and access.configures_all(user, relay_ids)):
        raise exceptions.PermissionDenied("updating a relay's agent needs configure_relay on each of its relays")
    if problems := refusals(machine_ids, data["agent_release"]["version"]):
        raise serializers.ValidationError({"agent_version": problems[:20]})


def copied(command: models.Model) -> dict:
    """What a rerun takes over of an agent update (nothing of any other command)."""
    if command.kind != CommandKind.UPDATE_AGENT:
        return {}
    return {"kind": command.kind, "agent_release": dict(command.agent_release)}
