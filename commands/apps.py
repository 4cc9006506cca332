from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"

    def ready(self) -> None:
        from commands import (  # noqa: F401 - checks and receivers register themselves
            batches, checks, fanout, full_output, notify, tasks)

        fanout.configure(notify.notifier)
