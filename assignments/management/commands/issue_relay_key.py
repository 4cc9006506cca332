import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assignments.models import RelayAssignment


class Command(BaseCommand):
    help = "Create a relay for a machine and print its API key and transport secret, once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--machine-id", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--created-by", help="username recorded as the creator")
        parser.add_argument("--json", action="store_true", help="print exactly one line of JSON on stdout")

    def handle(self, *args, machine_id: str, name: str, created_by: str | None, json: bool, **options) -> None:
        if not machine_id.strip() or not name.strip():
            raise CommandError("--machine-id and --name must not be empty")
        user = None
        if created_by:
            user = get_user_model().objects.filter(username=created_by).first()
            if user is None:
                raise CommandError(f"no user named {created_by!r}")
        issued = RelayAssignment.issue(machine_id=machine_id, name=name, created_by=user)
        if json:
            self.stdout.write(_dumps(issued.as_json()))
            self.stderr.write("Store the key and transport secret now: they are not shown again.")
            return
        self.stdout.write(
            f"Relay {issued.relay.pk} ({name}) for machine {machine_id}\n"
            f"API key:          {issued.api_key}\n"
            f"Transport secret: {issued.transport_secret}\n"
            "Store both now: they are not shown again.\n"
            f"Start the agent:  relay-agent <API key> <hub URL> --shared-secret <transport secret>"
        )


def _dumps(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))
