from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from assignments.models import RelayAssignment


class Command(BaseCommand):
    help = "Revoke a relay's API key; the relay is refused on its next request."

    def add_arguments(self, parser) -> None:
        parser.add_argument("relay_id", nargs="?", help="the relay's id (assignmentId)")
        parser.add_argument("--machine-id")
        parser.add_argument("--name")

    def handle(self, *args, relay_id: str | None, machine_id: str | None, name: str | None, **options) -> None:
        try:
            if relay_id:
                relays = RelayAssignment.objects.filter(pk=relay_id)
            elif machine_id and name:
                relays = RelayAssignment.objects.filter(machine_id=machine_id, name=name)
            else:
                raise CommandError("give a relay id, or both --machine-id and --name")
            found = list(relays.select_related("api_key"))
        except ValidationError:
            raise CommandError(f"{relay_id!r} is not a relay id") from None
        if len(found) != 1:
            raise CommandError(f"expected one relay, found {len(found)}")
        relay = found[0]
        if relay.api_key is None or relay.api_key.is_revoked:
            self.stdout.write(f"Relay {relay.pk} has no active key.")
            return
        relay.revoke_key()
        self.stdout.write(f"Revoked the key of relay {relay.pk} ({relay.name}).")
