from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from assignments import access, reachability
from commands import batches
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
                              strip=False)
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
        self.fields["machines"].choices = machine_choices(user)

    def clean_machines(self) -> list[str]:
        machines = self.cleaned_data["machines"]
        refused = [machine for machine in machines if not access.can_run_on(self.user, machine)]
        if refused:
            raise forms.ValidationError(f"You may not run commands on {', '.join(refused)}.")
        return machines

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_reachable(data)
        self.check_target(data)
        return data

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
        }


def initial_from(command: Command) -> dict[str, Any]:
    """The run form filled in from an earlier command (duplicate)."""
    return {
        "machines": [command.machine_id],
        "command": command.command,
        "target_type": command.target_type,
        "target_host": command.target_host,
        "target_port": command.target_port,
        "target_username": command.target_username,
        "timeout_s": Decimal(command.timeout_ms) / 1000,
        "priority": command.priority,
    }
