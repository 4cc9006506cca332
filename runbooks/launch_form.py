"""The launch form: one field per template parameter, built from its definition."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from runbooks import params
from runbooks.models import JobTemplate


def parameter_field(item: dict) -> forms.Field:
    label = item.get("label") or item["name"].replace("_", " ").capitalize()
    help_text = item.get("help", "")
    required = bool(item.get("required"))
    kind = item["type"]
    if kind == "secret":
        return forms.CharField(label=label, required=False, disabled=True,
                               initial=f"from the shared credential {item['credential']!r}", help_text=(
                                   help_text or "Taken from its credential; never shown or stored with the command."))
    if kind == "boolean":
        return forms.BooleanField(label=label, required=False, initial=bool(item.get("default")), help_text=help_text)
    if kind == "integer":
        return forms.IntegerField(label=label, required=required, initial=item.get("default"),
                                  min_value=item.get("min"), max_value=item.get("max"), help_text=help_text)
    if kind == "choice":
        choices = [("", "---------")] * (not required) + [(choice, choice) for choice in item["choices"]]
        return forms.ChoiceField(label=label, required=required, choices=choices, initial=item.get("default"),
                                 help_text=help_text)
    if item.get("pattern"):
        help_text = f"{help_text} Must match {item['pattern']}.".strip()
    return forms.CharField(label=label, required=required, initial=item.get("default"), strip=False,
                           max_length=params.MAX_VALUE, help_text=help_text)


class LaunchForm(forms.Form):
    selector = forms.CharField(required=False, max_length=4096, label="Narrow to", help_text=(
        "Optional: a label selector that narrows where the template runs. It can never widen it."),
        widget=forms.TextInput(attrs={"size": 60, "placeholder": "env=staging", "autocomplete": "off"}))
    queue_if_offline = forms.BooleanField(required=False, label="Queue even if no relay is online")

    def __init__(self, *args: Any, template: JobTemplate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        self.parameter_names = []
        for item in template.parameters:
            name = f"param_{item['name']}"
            self.fields[name] = parameter_field(item)
            self.parameter_names.append(name)
        self.order_fields([*self.parameter_names, "selector", "queue_if_offline"])

    def values(self) -> dict[str, Any]:
        """The parameter values for runbooks.launch: what was typed, booleans as booleans, secrets left out."""
        values = {}
        for item in self.template.parameters:
            value = self.cleaned_data.get(f"param_{item['name']}")
            if item["type"] == "secret" or value is None or value == "" and item["type"] != "boolean":
                continue
            values[item["name"]] = value
        return values

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            params.render(self.template.parameters, self.values())
        except ValidationError as exc:
            for problem in exc.message_dict.get("parameters", []):
                name, _, message = problem.partition(": ")
                field = f"param_{name}"
                if field not in self.fields:
                    self.add_error(None, problem)
                elif field not in self.errors:  # a field's own error (a bound, a missing value) says it already
                    self.add_error(field, message)
        return data
