from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"

    def ready(self) -> None:
        from commands import checks, fanout, notify  # noqa: F401 - checks registers itself

        fanout.configure(notify.notifier)
