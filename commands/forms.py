from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms

from rest_framework import serializers

from assignments import access, reachability
from commands import batches, run_options
from commands.choices import TargetType
from commands.models import Command

MAX_TIMEOUT_S = 24 * 3600


def machine_choices(user) -> list[tuple[str, str]]:
    """Machines the user may run on, each labelled with the relays serving it."""
    relays: dict[str, list[str]] = {}
    for relay in access.relays_for(user, access.RUN).select_related("status").order_by("machine_id", "name"):
        state = "disabled" if not relay.enabled else "online" if relay.is_online else "offline"
        relays.setdefault(relay.machine_id, []).append(f"{relay.name}: {state}")
    return [(machine, f"{machine} ({', '.join(names)})") for machine, names in relays.items()]


class PickList(forms.CheckboxSelectMultiple):
    """Checkboxes that picklist.js turns into a scrolling list with a search box and "select all"."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({"class": "rh-picklist", **(attrs or {})})


class LimitField(forms.CharField):
    """A whole number, or a percentage of the batch's targets such as "25%"."""

    def __init__(self, *, minimum: int, **kwargs: Any) -> None:
        self.minimum = minimum
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 12, "placeholder": "e.g. 5 or 25%"}))
        super().__init__(required=False, max_length=8, **kwargs)

    def clean(self, value: Any) -> int | str | None:
        value = super().clean(value)
        try:
            return batches.check_limit(value, name=self.label or "this limit", minimum=self.minimum)
        except batches.LimitError as exc:
            raise forms.ValidationError(str(exc)) from None


class RunCommandForm(forms.Form):
    machines = forms.MultipleChoiceField(widget=PickList,
                                         help_text="One machine opens the command page; several make a batch.")
    command = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80, "spellcheck": "false"}),
                              strip=False, required=False, help_text="Shell text; or give a script below.")
    script_file = forms.FileField(required=False, label="Upload a script",
                                  help_text=f"A text file of at most {run_options.MAX_SCRIPT_BYTES // 1024} KiB; "
                                            "it replaces the script text.")
    script = forms.CharField(required=False, strip=False, label="Script", widget=forms.Textarea(
        attrs={"rows": 8, "cols": 80, "spellcheck": "false", "class": "rh-mono"}),
        help_text="Run as a file by the interpreter, instead of a command line.")
    interpreter = forms.ChoiceField(choices=run_options.Interpreter.choices, initial=run_options.Interpreter.SH,
                                    required=False)
    working_directory = forms.CharField(required=False, max_length=4096, label="Working directory",
                                        widget=forms.TextInput(attrs={"size": 60, "placeholder": "/srv/app"}))
    environment = forms.CharField(required=False, strip=False, label="Environment variables", widget=forms.Textarea(
        attrs={"rows": 3, "cols": 80, "spellcheck": "false", "placeholder": "RELEASE=2026.12\nLOG_LEVEL=debug"}),
        help_text="NAME=value, one per line. Values are set as they are: never shell text.")
    run_as = forms.CharField(required=False, max_length=32, label="Run as user", help_text=(
        "Through sudo -u on the target; the relay's run-as policy (a config push) must list the user."))
    target_type = forms.ChoiceField(choices=[(TargetType.LOCAL, "Local"), (TargetType.SSH, "SSH")],
                                    initial=TargetType.LOCAL, widget=forms.RadioSelect,
                                    label="Run", help_text="On the relay's machine itself, or over SSH from it.")
    target_host = forms.CharField(required=False, max_length=255, label="SSH host")
    target_port = forms.IntegerField(required=False, min_value=1, max_value=65535, label="SSH port",
                                     help_text="22 when empty.")
    target_username = forms.CharField(required=False, max_length=100, label="SSH user")
    timeout_s = forms.DecimalField(label="Timeout (seconds)", initial=30, min_value=Decimal("0.001"),
                                   max_value=MAX_TIMEOUT_S, decimal_places=3)
    priority = forms.IntegerField(initial=5, min_value=1, max_value=10, help_text="1 to 10; higher runs first.")
    max_concurrency = LimitField(minimum=1, label="Max concurrency",
                                 help_text="A batch: how many run at once, a number or a share such as 25% "
                                           "(all when empty).")
    max_errors = LimitField(minimum=0, label="Max errors",
                            help_text="A batch: past this many failed runs (a number or a share such as 10%), "
                                      "the rest are cancelled. Copies not delivered do not count.")
    queue_if_offline = forms.BooleanField(
        required=False, label="Queue even if no relay is online",
        help_text="Otherwise a machine with no relay online is refused (one machine) or recorded as not "
                  "delivered (several).")

    def __init__(self, *args: Any, user, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.uploaded_script = ""
        self.fields["machines"].choices = machine_choices(user)

    def clean_machines(self) -> list[str]:
        machines = self.cleaned_data["machines"]
        refused = [machine for machine in machines if not access.can_run_on(self.user, machine)]
        if refused:
            raise forms.ValidationError(f"You may not run commands on {', '.join(refused)}.")
        return machines

    def clean_environment(self) -> dict[str, str]:
        environment: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["environment"].splitlines(), 1):
            if not line.strip():
                continue
            name, equals, value = line.partition("=")
            if not equals:
                raise forms.ValidationError(f"Line {number}: write NAME=value.")
            environment[name.strip()] = value
        return environment

    def clean_script_file(self) -> Any:
        upload = self.cleaned_data["script_file"]
        if upload is None:
            return None
        if upload.size > run_options.MAX_SCRIPT_BYTES:
            raise forms.ValidationError(f"The script is over {run_options.MAX_SCRIPT_BYTES // 1024} KiB.")
        try:
            self.uploaded_script = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The script is not UTF-8 text.") from None
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_reachable(data)
        self.check_target(data)
        self.check_run_options(data)
        return data

    def check_run_options(self, data: dict[str, Any]) -> None:
        """The API's rules (commands.run_options.clean), each error on its field."""
        upload = data.get("script_file")
        if upload is not None:
            data["script"] = self.uploaded_script
        options = {"command": data.get("command", ""), "script": data.get("script", ""),
                   "interpreter": data.get("interpreter") if data.get("script") else "",
                   "script_name": re.sub(r"[^A-Za-z0-9._+-]", "_", upload.name)[:100] if upload else "",
                   "working_directory": data.get("working_directory", ""),
                   "environment": data.get("environment") or {}, "run_as": data.get("run_as", "")}
        try:
            field = run_options.EnvironmentField()
            options["environment"] = field.run_validation(options["environment"])
        except serializers.ValidationError as exc:
            self.add_error("environment", " ".join(str(item) for item in exc.detail))
            return
        try:
            cleaned = run_options.clean(options)
        except serializers.ValidationError as exc:
            for name, problem in exc.detail.items():
                self.add_error(name if name in self.fields else "script", str(problem))
            return
        data.update({name: cleaned.get(name) or "" for name in run_options.FIELDS}, command=cleaned["command"])
        data["environment"] = cleaned.get("environment") or {}
        try:
            run_options.require_support(data.get("machines") or [], data)
        except serializers.ValidationError as exc:
            for problem in exc.detail["run_options"]:
                self.add_error(None, str(problem))

    def check_reachable(self, data: dict[str, Any]) -> None:
        """One machine must have a relay online, unless queueing is asked for (several: not delivered)."""
        machines = data.get("machines") or []
        if len(machines) == 1 and not data.get("queue_if_offline"):
            for problem in reachability.refusals(machines, how="tick “Queue even if no relay is online”"):
                self.add_error("machines", problem)

    def check_target(self, data: dict[str, Any]) -> None:
        if data.get("target_type") == TargetType.SSH:
            if not data.get("target_host"):
                self.add_error("target_host", "An SSH command needs a host.")
        else:
            for name in ("target_host", "target_port", "target_username"):
                if data.get(name):
                    self.add_error(name, "Only for SSH commands; choose SSH or leave this empty.")

    def command_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "command": data["command"],
            "target_type": data["target_type"],
            "target_host": data["target_host"],
            "target_port": data["target_port"],
            "target_username": data["target_username"],
            "timeout_ms": int(data["timeout_s"] * 1000),
            "priority": data["priority"],
            **{name: data.get(name) or ({} if name == "environment" else "") for name in run_options.FIELDS},
        }


def initial_from(command: Command) -> dict[str, Any]:
    """The run form filled in from an earlier command (duplicate)."""
    return {
        "machines": [command.machine_id],
        "target_type": command.target_type,
        "target_host": command.target_host,
        "target_port": command.target_port,
        "target_username": command.target_username,
        "timeout_s": Decimal(command.timeout_ms) / 1000,
        "priority": command.priority,
        "command": "" if command.script or command.is_package_command else command.command,
        "script": command.script,
        "interpreter": command.interpreter or run_options.Interpreter.SH,
        "working_directory": command.working_directory,
        "environment": "\n".join(f"{name}={value}" for name, value in (command.environment or {}).items()),
        "run_as": command.run_as,
    }
