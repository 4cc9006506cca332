from __future__ import annotations

from django import forms

from assignments import labels
from assignments.models import RelayAssignment


class IssueRelayForm(forms.ModelForm):
    """A new relay: its key and transport secret are generated and shown once."""

    class Meta:
        model = RelayAssignment
        fields = ["machine_id", "name"]
        help_texts = {
            "machine_id": "The machine this relay runs commands for; several relays may serve one machine.",
            "name": "A label for operators, e.g. where the relay runs.",
        }


class LabelsField(forms.CharField):
    """Labels typed as ``key=value`` pairs, separated by commas or new lines; stored as a JSON object."""

    widget = forms.Textarea(attrs={"rows": 2, "placeholder": "env=prod, role=web"})

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "key=value pairs, separated by commas or new lines; selectors pick by them.")
        super().__init__(**kwargs)

    def prepare_value(self, value: object) -> object:
        if isinstance(value, dict):
            return labels.format_labels(value)
        return value

    def to_python(self, value: object) -> dict:
        if isinstance(value, dict):
            return value
        try:
            return labels.clean_labels(super().to_python(value) or "")
        except labels.LabelError as exc:
            raise forms.ValidationError(str(exc)) from None


class RelayForm(forms.ModelForm):
    labels = LabelsField()

    class Meta:
        model = RelayAssignment
        fields = ["name", "machine_id", "enabled", "labels", "requires_approval"]
