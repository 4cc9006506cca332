"""``revoke_api_tokens USER`` (or ``--all-users``): delete operator API tokens; they stop working at once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

from relayhub.web import operator_tokens


class Command(BaseCommand):
    help = "Revoke every API token of a user, or of all users."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - argparse
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("username", nargs="?")
        target.add_argument("--all-users", action="store_true", help="revoke every operator API token")

    def handle(self, *args, username: str | None, all_users: bool, **options) -> None:
        if all_users:
            count = AuthToken.objects.all().delete()[0]
            self.stdout.write(f"Revoked {count} API token(s) of all users")
            return
        users = get_user_model()._default_manager
        try:
            user = users.get_by_natural_key(username)
        except users.model.DoesNotExist:
            raise CommandError(f"user {username} does not exist") from None
        count = operator_tokens.revoke_all(user)
        self.stdout.write(f"Revoked {count} API token(s) of user {username}")
