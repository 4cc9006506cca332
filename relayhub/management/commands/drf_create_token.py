"""``drf_create_token USER``: as DRF's command, but for hashed, expiring knox tokens.

Each run makes a new token (the hub cannot show an existing one: it keeps only
its digest); ``--reset`` revokes the user's other tokens first.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from relayhub.web import operator_tokens


class Command(BaseCommand):
    help = "Create an API token for a user and print it once; only its hash is stored."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - argparse
        parser.add_argument("username")
        parser.add_argument("-r", "--reset", action="store_true", dest="reset_token",
                            help="revoke the user's existing tokens first")

    def handle(self, *args, username: str, reset_token: bool, **options) -> None:
        users = get_user_model()._default_manager
        try:
            user = users.get_by_natural_key(username)
        except users.model.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        if reset_token:
            operator_tokens.revoke_all(user)
        self.stdout.write(f"Generated token {operator_tokens.issue(user)} for user {username}")
