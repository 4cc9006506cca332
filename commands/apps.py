from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"

    def ready(self) -> None:
        from commands import fanout, notify

        fanout.configure(notify.notifier)
