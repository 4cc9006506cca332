from __future__ import annotations

from typing import Any

from django import forms

from credentials.models import SharedCredential


class SharedCredentialForm(forms.ModelForm):
    # Write-only: never rendered back, not even as a masked placeholder of its length.
    value = forms.CharField(widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                            required=False, strip=False, max_length=64 * 1024,
                            help_text="Stored encrypted and never shown again. Leave empty to keep the current value.")

    class Meta:
        model = SharedCredential
        fields = ["name", "credential_type", "target_host", "value", "assigned_relays"]
        help_texts = {"assigned_relays": "Saving queues a credential push to each assigned relay."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        visible = self.fields["assigned_relays"].queryset
        # Assignments to relays this user cannot see are kept as they are.
        self.hidden_relays = (list(self.instance.assigned_relays.exclude(pk__in=visible.values("pk")))
                              if self.instance.pk else [])

    def clean_assigned_relays(self) -> list:
        return [*self.cleaned_data["assigned_relays"], *self.hidden_relays]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.instance.key_id and not cleaned.get("value"):
            self.add_error("value", "A new credential needs a value.")
        return cleaned

    def save(self, commit: bool = True) -> SharedCredential:
        credential = super().save(commit=False)
        if self.cleaned_data.get("value"):
            credential.set_value(self.cleaned_data["value"])
        if commit:
            credential.save()
            self.save_m2m()
        return credential
