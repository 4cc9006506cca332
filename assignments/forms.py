from __future__ import annotations

from django import forms

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
