"""``relay_exec MACHINE [--ssh user@host:port] [--timeout S] -- CMD``: run and stream, exit with its code."""

from __future__ import annotations

import re
import sys

from django.core.management.base import BaseCommand, CommandError

from commands import notify, output
from commands.choices import Stream, TargetType
from commands.execution import exec_async
from commands.models import Command as QueuedCommand

SSH_TARGET = re.compile(r"^(?:(?P<user>[^@:]+)@)?(?P<host>[^@:]+)(?::(?P<port>\d{1,5}))?$")
# What the shell would answer for a command that never produced an exit code.
EXIT_FOR_STATUS = {"timeout": 124, "cancelled": 130}


class Command(BaseCommand):
    help = "Run a shell command on a machine's relay, stream its output, and exit with its exit code."

    def add_arguments(self, parser) -> None:
        parser.add_argument("machine_id", metavar="MACHINE")
        parser.add_argument("argv", nargs="+", metavar="CMD", help="the command (after --)")
        parser.add_argument("--ssh", metavar="USER@HOST:PORT", help="run over SSH from the relay")
        parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds (default 30)")
        parser.add_argument("--priority", type=int, default=5)
        parser.add_argument("--no-follow", dest="follow", action="store_false",
                            help="print the command id and return at once")

    def handle(self, *args, machine_id: str, argv: list[str], ssh: str | None, timeout: float, priority: int,
               follow: bool, **options) -> None:
        target = {"target_type": TargetType.LOCAL}
        if ssh:
            match = SSH_TARGET.match(ssh)
            if not match:
                raise CommandError("--ssh must look like user@host:port")
            target = {"target_type": TargetType.SSH, "target_host": match["host"],
                      "target_username": match["user"] or "",
                      "target_port": int(match["port"]) if match["port"] else None}
        if timeout <= 0:
            raise CommandError("--timeout must be positive")
        command_id = exec_async(machine_id, " ".join(argv), timeout_ms=int(timeout * 1000), priority=priority,
                                **target)
        if not follow:
            self.stdout.write(str(command_id))
            return
        self.stderr.write(f"queued command {command_id} on {machine_id}")
        sys.exit(self.follow(command_id))

    def follow(self, command_id: int) -> int:
        topic = notify.command_topic(command_id)
        ended = notify.notifier.subscribe(topic)
        offsets = {stream: 0 for stream in Stream.values}
        sinks = {Stream.STDOUT: sys.stdout, Stream.STDERR: sys.stderr}
        try:
            while True:
                command = QueuedCommand.objects.get(pk=command_id)
                for stream in Stream.values:
                    text, offsets[stream] = output.since(command, stream, offsets[stream])
                    if text:
                        sinks[stream].write(text)
                        sinks[stream].flush()
                if command.is_terminal:
                    break
                # Chunks are not published, so poll them briefly; the end is a wake-up.
                ended.wait(0.2)
        finally:
            notify.notifier.unsubscribe(topic, ended)
        if command.error:
            self.stderr.write(f"{command.status}: {command.error}")
        if command.exit_code is not None:
            return command.exit_code
        return EXIT_FOR_STATUS.get(command.status, 1)
