from django.core.management.base import BaseCommand
from django.db import transaction

from credentials import crypto
from notifications.models import Channel


class Command(BaseCommand):
    help = "Re-encrypt every notification channel's webhook secret under the first key of CREDENTIAL_KEYS."

    def handle(self, *args, **options) -> None:
        primary = crypto.credential_keys().primary_id
        rotated, unopened = 0, []
        for pk in Channel.objects.exclude(secret_key_id__in=["", primary]).values_list("pk", flat=True):
            with transaction.atomic():
                channel = Channel.objects.select_for_update().get(pk=pk)
                try:
                    changed = channel.reencrypt()
                except crypto.DecryptionError:
                    unopened.append(channel.name)
                    continue
                if changed:
                    channel.save(update_fields=["secret_key_id", "secret_ciphertext"])
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} channel secret(s) under key {primary!r}.")
        if unopened:
            self.stderr.write(f"These channels' secrets do not open under CREDENTIAL_KEYS; set them again: "
                              f"{', '.join(unopened)}")
