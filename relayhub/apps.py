from django.apps import AppConfig


class RelayHubConfig(AppConfig):
    """The project package as an app: its system checks and management commands."""

    name = "relayhub"

    def ready(self) -> None:
        from relayhub import checks  # noqa: F401 - registers the checks
