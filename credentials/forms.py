from __future__ import annotations

from typing import Any

from django import forms

from credentials import assignment
from credentials.models import SSH_TYPES, SharedCredential


class WriteOnlyTextarea(forms.Textarea):
    """Several lines (an SSH private key keeps its line breaks), never rendered back, not even after an error."""

    def format_value(self, value: Any) -> None:
        return None


class SharedCredentialForm(forms.ModelForm):
    value = forms.CharField(
        widget=WriteOnlyTextarea(attrs={"rows": 6, "cols": 70, "autocomplete": "off", "spellcheck": "false"}),
        required=False, strip=False, max_length=64 * 1024,
        help_text="A password, or a whole private key (-----BEGIN ... -----END ..., line breaks kept). Stored "
                  "encrypted and never shown again. Leave empty to keep the current value.")
    user: Any = None  # set by the admin: whose change this is

    class Meta:
        model = SharedCredential
        fields = ["name", "credential_type", "target_host", "value", "assigned_relays"]
        help_texts = {"assigned_relays": "Saving queues a credential push to each assigned relay. Changing which "
                                         "relays hold it, or changing one they hold, needs configure_relay on them."}

    def clean_value(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; a private key's are LF.
        return self.cleaned_data["value"].replace("\r\n", "\n")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.instance.key_id and not cleaned.get("value"):
            self.add_error("value", "A new credential needs a value.")
        if cleaned.get("credential_type") in SSH_TYPES and not cleaned.get("target_host") \
                and "target_host" not in self.errors:
            self.add_error("target_host", "An SSH credential needs the host it is bound to.")
        if self.user is not None and "assigned_relays" in cleaned:
            changed = bool(cleaned.get("value")) or any(name in self.changed_data for name in assignment.PUSHED_FIELDS)
            current = self.instance.assigned_relays.all() if self.instance.pk else []
            try:
                cleaned["assigned_relays"] = assignment.merge(self.user, current, cleaned["assigned_relays"],
                                                              changed)
            except assignment.AssignmentRefused as exc:
                self.add_error("assigned_relays", str(exc))
        return cleaned

    def save(self, commit: bool = True) -> SharedCredential:
        credential = super().save(commit=False)
        if self.cleaned_data.get("value"):
            credential.set_value(self.cleaned_data["value"])
        if commit:
            credential.save()
            self.save_m2m()
        return credential
