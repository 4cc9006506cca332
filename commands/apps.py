from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"

    def ready(self) -> None:
        from commands import batches, checks, fanout, full_output, notify, tasks  # noqa: F401 - checks and receivers register themselves

        fanout.configure(notify.notifier)
