"""The run form with a "SSH targets" mode: a label selector and/or chosen targets, and the live preview's data.

commands may not import fleet, so fleet extends commands' RunCommandForm here (and its run view in
fleet.admin_run): machine mode stays commands' own; targets mode makes a batch through
fleet.batch_api.create_batch, with the same checks as POST /api/v1/batches/.
"""

from __future__ import annotations

from typing import Any

from django import forms

from assignments import access
from assignments.labels import LabelError, Selector, parse_selector
from commands.choices import TargetType
from commands.forms import PickList, RunCommandForm
from fleet import selection
from fleet.models import SSHTarget

MACHINES, TARGETS = "machines", "targets"
PREVIEW_LIMIT = 200
SELECTOR_HELP = ("Labels as in Kubernetes: key=value, key!=value, key in (a,b), key notin (a), key, !key; "
                 "commas join them. Chosen targets below are added to what it matches.")


def visible_targets(user):
    return (selection.targets_for(user).filter(enabled=True).prefetch_related("relays__status")
            .order_by("name"))


def target_choices(user) -> list[tuple[int, str]]:
    return [(target.pk, f"{target.name} — {target.username + '@' if target.username else ''}{target.address} "
             f"({', '.join(relay.name for relay in target.relays.all())})") for target in visible_targets(user)]


def matched_targets(user, selector: Selector | None, ids: list[int]) -> list[SSHTarget]:
    """What the selector matches, then the chosen targets it did not: enabled targets the user can see."""
    found = selection.select_targets(user, selector) if selector is not None and not selector.is_empty else []
    seen = {target.pk for target in found}
    if ids:
        chosen = {target.pk: target for target in visible_targets(user).filter(pk__in=ids)}
        found += [chosen[pk] for pk in dict.fromkeys(ids) if pk in chosen and pk not in seen]
    return found


def relay_state(relay) -> str:
    return "disabled" if not relay.enabled else "online" if relay.is_online else "offline"


def preview(user, text: str, ids: list[int]) -> dict[str, Any]:
    """The preview's JSON; ``LabelError`` for a malformed selector."""
    selector = parse_selector(text.strip()) if text.strip() else None
    found = matched_targets(user, selector, ids)
    runnable = set(access.relays_for(user, access.RUN).filter(
        pk__in=[relay.pk for target in found[:PREVIEW_LIMIT] for relay in target.relays.all()])
        .values_list("pk", flat=True))
    rows = []
    for target in found[:PREVIEW_LIMIT]:
        relays = [{"name": relay.name, "machine_id": relay.machine_id, "state": relay_state(relay)}
                  for relay in target.relays.all()]
        rows.append({"id": target.pk, "name": target.name, "address": target.address, "username": target.username,
                     "labels": target.label_text, "relays": relays,
                     "online": any(relay["state"] == "online" for relay in relays),
                     "may_run": any(relay.enabled and relay.pk in runnable for relay in target.relays.all())})
    return {"selector": text, "count": len(found), "shown": len(rows),
            "online": sum(row["online"] for row in rows), "targets": rows}


class FleetRunForm(RunCommandForm):
    mode = forms.ChoiceField(choices=[(MACHINES, "Machines (local, or one SSH host given below)"),
                                      (TARGETS, "SSH targets, by selector or by name")],
                             initial=MACHINES, required=False, widget=forms.RadioSelect, label="Run on")
    selector = forms.CharField(required=False, max_length=4096, help_text=SELECTOR_HELP, widget=forms.TextInput(
        attrs={"size": 60, "placeholder": "env=prod,role in (web,api),!canary", "autocomplete": "off",
               "spellcheck": "false"}))
    targets = forms.TypedMultipleChoiceField(coerce=int, required=False, widget=PickList, label="SSH targets",
                                             help_text="Targets always make a batch, labelled by target name.")

    field_order = ["mode", "machines", "selector", "targets"]

    def __init__(self, *args: Any, user, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["machines"].required = False
        self.fields["targets"].choices = target_choices(user)
        self.parsed_selector: Selector | None = None

    def clean_mode(self) -> str:
        return self.cleaned_data["mode"] or MACHINES  # forms posted before there were modes

    def clean_selector(self) -> str:
        text = self.cleaned_data["selector"].strip()
        if text:
            try:
                self.parsed_selector = parse_selector(text)
            except LabelError as exc:
                raise forms.ValidationError(str(exc)) from None
        return text

    def clean(self) -> dict[str, Any]:
        if self.cleaned_data.get("mode") != TARGETS:
            data = super().clean()
            if not data.get("machines") and "machines" not in self.errors:
                self.add_error("machines", "Choose at least one machine.")
            return data
        data = self.cleaned_data
        data["machines"] = []
        data["target_type"] = TargetType.SSH
        for name in ("target_host", "target_port", "target_username"):
            if data.get(name):
                self.add_error(name, "Host, port and user come from the SSH targets; leave this empty.")
        if "selector" in self.errors:
            return data
        found = matched_targets(self.user, self.parsed_selector, data.get("targets") or [])
        # The selector's matches come first, and a chosen target it matches would be among them.
        if self.parsed_selector is not None and not any(self.parsed_selector.matches(target.labels)
                                                        for target in found):
            self.add_error("selector", f"The selector {data['selector']!r} matches no enabled SSH target you "
                                       "can see.")
        elif not found:
            self.add_error("selector", "Type a selector or choose SSH targets.")
        data["target_ids"] = [target.pk for target in found]
        return data

    def batch_data(self) -> dict[str, Any]:
        """What fleet.batch_api.create_batch takes: the targets resolved here (``targets`` wins over ``selector``
        there), and the selector, which the batch records."""
        data = self.cleaned_data
        fields = self.command_fields()
        return {**fields, "target_type": TargetType.SSH, "target_host": "", "target_port": None,
                "target_username": "", "targets": data["target_ids"], "selector": data["selector"],
                "max_concurrency": data["max_concurrency"], "max_errors": data["max_errors"],
                "queue_if_offline": data["queue_if_offline"]}
