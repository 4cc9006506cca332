from django.apps import AppConfig


class RelayHubConfig(AppConfig):
    """The project package as an app: its system checks and management commands."""

    name = "relayhub"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from relayhub import checks, private_files  # noqa: F401 - checks registers itself

        connection_created.connect(private_files.make_sqlite_files_private, dispatch_uid="relayhub.private_sqlite")
