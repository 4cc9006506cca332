from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"

    def ready(self) -> None:
        from commands import checks, fanout, notify, tasks  # noqa: F401 - checks and tasks' receiver register themselves

        fanout.configure(notify.notifier)
