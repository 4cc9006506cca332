from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from configpush import payloads
from configpush.models import ConfigPush, PushType

EXAMPLES = {
    PushType.SSH_TARGETS: {"targets": [{"host": "10.0.0.5", "port": 22, "hostKey": "ssh-ed25519 AAAAC3Nza..."},
                                       "10.0.0.6:2222"]},
    PushType.ALLOWED_COMMANDS: {"commands": ["uptime", "systemctl status nginx"]},
    PushType.RUN_AS: {"users": ["deploy", "postgres"]},
    PushType.METRICS_INTERVAL: {"intervalMs": 30000},
}


def example(push_type: str) -> str:
    return json.dumps(EXAMPLES[push_type]) if push_type in EXAMPLES else ""


class ConfigPushForm(forms.ModelForm):
    # Credential pushes carry a value encrypted for one relay: they come from shared credentials only.
    push_type = forms.ChoiceField(choices=[(value, label) for value, label in PushType.choices
                                           if value != PushType.CREDENTIAL])
    payload = forms.JSONField(widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
                              help_text=format_html("JSON, by push type:<ul>{}</ul>", format_html_join(
                                  "", "<li><b>{}</b>: <code>{}</code></li>",
                                  [(kind.label, example(kind)) for kind in EXAMPLES])))

    class Meta:
        model = ConfigPush
        fields = ["relay", "push_type", "payload"]

    def clean_payload(self) -> Any:
        payload, push_type = self.cleaned_data["payload"], self.cleaned_data.get("push_type")
        if not push_type:
            return payload
        try:
            return payloads.validate(push_type, payload)
        except ValidationError as exc:
            raise ValidationError([*exc.messages, f"For example: {example(push_type)}"]) from None

    def add_error(self, field: str | None, error: Any) -> None:
        # ConfigPush.clean() validates the payload again; once this form refused it, one reason is enough.
        if field is None and "payload" in self._errors and hasattr(error, "error_dict"):
            error = ValidationError({name: errors for name, errors in error.error_dict.items() if name != "payload"})
            if not error.error_dict:
                return
        super().add_error(field, error)
