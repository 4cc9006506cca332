from django.core.management.base import BaseCommand
from django.db import transaction

from credentials import crypto
from credentials.models import SharedCredential


class Command(BaseCommand):
    help = "Re-encrypt every shared credential under the first key of CREDENTIAL_KEYS."

    def handle(self, *args, **options) -> None:
        primary = crypto.credential_keys().primary_id
        rotated = 0
        for pk in SharedCredential.objects.exclude(key_id=primary).values_list("pk", flat=True):
            with transaction.atomic():
                credential = SharedCredential.objects.select_for_update().get(pk=pk)
                if credential.reencrypt():
                    credential.save(update_fields=["key_id", "ciphertext"])
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} credential(s) under key {primary!r}.")
