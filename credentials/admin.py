from django import forms
from django.contrib import admin

from credentials.models import CredentialInventoryItem, SharedCredential


class SharedCredentialForm(forms.ModelForm):
    # Write-only: never rendered back, not even as a masked placeholder.
    value = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                            help_text="Stored encrypted. Leave empty to keep the current value.")

    class Meta:
        model = SharedCredential
        fields = ["name", "credential_type", "target_host", "assigned_relays"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.key_id and not cleaned.get("value"):
            self.add_error("value", "A new credential needs a value.")
        return cleaned

    def save(self, commit: bool = True):
        credential = super().save(commit=False)
        if self.cleaned_data.get("value"):
            credential.set_value(self.cleaned_data["value"])
        if commit:
            credential.save()
            self.save_m2m()
        return credential


@admin.register(SharedCredential)
class SharedCredentialAdmin(admin.ModelAdmin):
    form = SharedCredentialForm
    list_display = ["name", "credential_type", "target_host", "key_id", "updated_at"]
    search_fields = ["name", "target_host"]
    filter_horizontal = ["assigned_relays"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(CredentialInventoryItem)
class CredentialInventoryItemAdmin(admin.ModelAdmin):
    list_display = ["credential_name", "relay", "credential_type", "target_host", "storage_mode", "reported_at"]
    list_filter = ["credential_type", "storage_mode"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
