"""How a command runs, apart from what it runs: working directory, environment, run-as user, a script.

The relay agent turns these into a program fed on the standard input of `sh -s` (see
relay_agent/run_options.py): no value ever becomes command-line text. Relays enforce their own
policy (`run_as` users; no scripts, working directory or unsafe variables under an allow-list);
the hub checks shapes, so that a mistake is a 400 naming the field, and that every relay that may
claim the command has an agent that understands the options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers

from assignments.models import Capability, RelayAssignment
from commands import secrets

FIELDS = ("working_directory", "environment", "run_as", "script", "interpreter")
# What a copy, a rerun or a batch's command takes over: the fields, and the secret references a template set.
COPIED_FIELDS = (*FIELDS, "secret_environment")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")
MAX_ENV = 100
MAX_VALUE_BYTES = 32 * 1024
MAX_SCRIPT_BYTES = 1024 * 1024
SCRIPT_NAME = re.compile(r"[A-Za-z0-9._+-]{1,100}\Z")


class Interpreter(models.TextChoices):
    SH = "sh", "sh"
    BASH = "bash", "bash"
    PYTHON3 = "python3", "python3"
    PERL = "perl", "perl"


class RunOptionsModel(models.Model):
    working_directory = models.CharField(max_length=4096, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    run_as = models.CharField("run as", max_length=32, blank=True)
    script = models.TextField(blank=True)
    interpreter = models.CharField(max_length=10, choices=Interpreter.choices, blank=True)
    # NAME -> the shared credential whose value it gets; the value itself is never stored here.
    secret_environment = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    def run_options_wire(self) -> dict:
        data: dict = {}
        if self.working_directory:
            data["workingDirectory"] = self.working_directory
        if self.environment or self.secret_environment:
            data["environment"] = {**self.environment, **secrets.resolve(self.secret_environment or {})}
        if self.run_as:
            data["runAs"] = self.run_as
        if self.script:
            data["script"], data["interpreter"] = self.script, self.interpreter or Interpreter.SH
        return data


def uses_options(data: dict) -> bool:
    return any(data.get(name) for name in COPIED_FIELDS if name != "interpreter")


class EnvironmentField(serializers.DictField):
    def __init__(self, **kwargs) -> None:
        super().__init__(child=serializers.CharField(allow_blank=True, trim_whitespace=False), **kwargs)

    def to_internal_value(self, data: object) -> dict[str, str]:
        values = super().to_internal_value(data)
        if len(values) > MAX_ENV:
            raise serializers.ValidationError(f"at most {MAX_ENV} variables")
        for name, value in values.items():
            if not ENV_NAME.match(name):
                raise serializers.ValidationError(
                    f"{name[:100]!r} is not a variable name (letters, digits and '_', not starting with a digit)")
            if "\0" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
                raise serializers.ValidationError(f"{name}: at most {MAX_VALUE_BYTES} bytes, and no NUL")
        return values


class RunOptionsInput(serializers.Serializer):
    """The options as API input; mixed into the command and batch serializers."""

    working_directory = serializers.CharField(required=False, allow_blank=True, max_length=4096,
                                              help_text="An absolute path on the target.")
    environment = EnvironmentField(required=False, help_text=(
        "Variables set for the command, as {NAME: value}; values never become command text."))
    run_as = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text=(
        "Run through `sudo -u` as this user; the relay's run_as policy must list it."))
    script = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, help_text=(
        "A script run as a file by `interpreter`, instead of `command`."))
    interpreter = serializers.ChoiceField(Interpreter.choices, required=False, allow_blank=True)
    script_name = serializers.CharField(required=False, allow_blank=True, max_length=100, write_only=True, help_text=(
        "The script's file name, shown as its command (`bash deploy.sh`)."))


def clean(data: dict) -> dict:
    """Check the options in validated serializer data; the command becomes the script's label for a script."""
    errors: dict[str, str] = {}
    directory = data.get("working_directory") or ""
    if directory and (not directory.startswith("/") or "\0" in directory):
        errors["working_directory"] = "must be an absolute path"
    run_as = data.get("run_as") or ""
    if run_as and not USER_NAME.match(run_as):
        errors["run_as"] = "must be a user name (lower case letters, digits, '_', '.', '-'; at most 32)"
    script = data.get("script") or ""
    name = data.pop("script_name", "") or ""
    if script:
        if "\0" in script or len(script.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
            errors["script"] = f"must be text of at most {MAX_SCRIPT_BYTES} bytes"
        if data.get("command"):
            errors["command"] = "give a command or a script, not both"
        if name and not SCRIPT_NAME.match(name):
            errors["script_name"] = "letters, digits, '.', '_', '+' and '-' only"
        data["interpreter"] = data.get("interpreter") or Interpreter.SH
        data["command"] = f"{data['interpreter']} {name or 'script'}"
    elif not (data.get("command") or "").strip():
        errors["command"] = "give a command or a script"
    elif data.get("interpreter"):
        errors["interpreter"] = "an interpreter runs a script; there is none"
    if errors:
        raise serializers.ValidationError(errors)
    return data


def checked(command: str, options: dict, machine_ids: Iterable[str]) -> dict:
    """For callers outside the API (``exec()``, ``relay_exec``): the command and its options, cleaned and checked
    against the relays; Django's ValidationError, with messages per field, when they cannot run."""
    serializer = RunOptionsInput(data=options)
    try:
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        data = clean({**serializer.validated_data, "command": command})
        require_support(machine_ids, data)
    except serializers.ValidationError as exc:
        raise DjangoValidationError({name: [str(problem) for problem in (
            problems if isinstance(problems, list) else [problems])] for name, problems in exc.detail.items()}
        ) from None
    return data


def unsupported_relays(machine_ids: Iterable[str]) -> list[str]:
    """Enabled relays of these machines whose agent has not said it understands run options."""
    relays = RelayAssignment.objects.filter(machine_id__in=set(machine_ids), enabled=True).select_related("status")
    return sorted(relay.name for relay in relays
                  if Capability.RUN_OPTIONS not in (getattr(getattr(relay, "status", None), "capabilities", None) or []))


def require_support(machine_ids: Iterable[str], data: dict) -> None:
    """A 400 when a relay that may claim the command would not understand its options.

    An agent without them would run the bare command: as the agent's user instead of the run-as
    user, or without its environment. So every enabled relay of each machine must support them.
    """
    if not uses_options(data):
        return
    if old := unsupported_relays(machine_ids):
        raise serializers.ValidationError({"run_options": [
            f"relay {name!r} has not reported support for working directory, environment, run-as and scripts "
            "(capability run_options): update its relayhub agent, or disable it" for name in old[:20]]})
