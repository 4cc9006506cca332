"""``manage.py agent_release_key [--force]``: create the Ed25519 key that signs agent releases; print its public half."""

from django.core.management.base import BaseCommand, CommandError

from relayhub.relay import release_key


class Command(BaseCommand):
    help = ("Create the agent release key (its private half in RELAYHUB_AGENT_RELEASE_KEY_FILE, mode 0600) and print "
            "its public half, base64 of 32 bytes, for relay-agent --release-public-key. --show prints the public half "
            "of the existing key.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="replace an existing key")
        parser.add_argument("--show", action="store_true", help="print the existing key's public half, create nothing")

    def handle(self, *args, force: bool = False, show: bool = False, **options) -> None:
        try:
            if show:
                public = release_key.public_text(release_key.private_key().public_key())
            else:
                public = release_key.public_text(release_key.create(force=force))
                self.stderr.write(f"agent release key written to {release_key.key_path()} (mode 0600)")
        except release_key.ReleaseKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(public)
