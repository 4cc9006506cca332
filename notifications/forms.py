from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from notifications.models import MIN_SECRET_CHARS, Channel

SECRET_HELP = ("Webhooks: the key of the X-Relayhub-Signature HMAC (sha256=hex of the body), at least "
               f"{MIN_SECRET_CHARS} characters. Stored encrypted and never shown again. Leave empty to keep "
               "the current one.")


def check_secret(value: str) -> str | None:
    """What is wrong with a new secret, in words that never repeat it; None if nothing is."""
    if value and len(value) < MIN_SECRET_CHARS:
        return f"A secret needs at least {MIN_SECRET_CHARS} characters."
    if value != value.strip():
        return "A secret may not begin or end with spaces."
    return None


def _formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # a URL typed without one; Django 6's default
    return field.formfield(**kwargs)


class ChannelForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False, strip=False, max_length=1024, help_text=SECRET_HELP)

    class Meta:
        model = Channel
        fields = ["name", "kind", "url", "email_to", "secret", "enabled"]
        widgets = {"email_to": forms.Textarea(attrs={"rows": 3, "cols": 60})}
        formfield_callback = _formfield

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        secret = cleaned.get("secret") or ""
        problem = check_secret(secret)
        if problem:
            self.add_error("secret", problem)
        elif secret:
            # Sealed now, so that the model's checks (a webhook needs a secret) see it.
            self.instance.set_secret(secret)
        return cleaned
