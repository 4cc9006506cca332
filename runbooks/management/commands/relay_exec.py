"""``relay_exec MACHINE [--ssh user@host:port] -- CMD`` or ``relay_exec --selector S | --target NAME -- CMD``."""

from __future__ import annotations

import re
from argparse import RawDescriptionHelpFormatter
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from rest_framework import exceptions

from assignments import reachability
from assignments.labels import LabelError, parse_selector
from commands import approvals, batches, notify, output, packages
from commands.api import require_run_permission
from commands.choices import ApprovalState, CommandStatus, Stream, TargetType
from commands.execution import exec_async, wait_until_ended
from commands.models import Command as QueuedCommand
from commands.models import IllegalTransition
from audit import trail
from audit.models import Source
from fleet import exec_cli, selection
from fleet.ctrl_c import CtrlC
from fleet.batch_api import BatchCreateSerializer, create_batch
from fleet.exec_cli import EXIT_INTERRUPTED, EXIT_UNDELIVERED, EXIT_USAGE
from runbooks import access
from runbooks.exec_help import EPILOG
from runbooks.launch import launch
from runbooks.models import JobTemplate

SSH_TARGET = re.compile(r"^(?:(?P<user>[^@:]+)@)?(?P<host>[^@:]+)(?::(?P<port>\d{1,5}))?$")
# What the shell would answer for a command that never produced an exit code.
EXIT_FOR_STATUS = {"timeout": 124, "cancelled": 130}
# After Ctrl-C, how long to wait for the relays to confirm what was cancelled.
CANCEL_WAIT_S = 5.0
QUEUE_ANYWAY = "pass --queue-if-offline"  # how the shell says it, where the API says queue_if_offline



class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = "Run a shell command on a machine's relay or on SSH targets, stream the output, exit with the outcome."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, epilog=EPILOG, **kwargs)
        parse = parser.parse_args

        def parse_args(args=None, namespace=None):
            # What follows "--" is the command, verbatim; argparse would not say where "--" was.
            args = list(sys.argv[1:] if args is None else args)
            after = None
            if "--" in args:
                at = args.index("--")
                args, after = args[:at], args[at + 1:]
            options = parse(args, namespace)
            options.after_dashes = after
            return options

        parser.parse_args = parse_args
        return parser

    def add_arguments(self, parser) -> None:
        parser.add_argument("words", nargs="*", metavar="MACHINE -- CMD",
                            help="the machine (unless --selector or --target), then the command after --")
        parser.add_argument("--ssh", metavar="USER@HOST:PORT", help="run over SSH from MACHINE's relay")
        parser.add_argument("--selector", metavar="SELECTOR",
                            help='label selector, e.g. "env=prod,role in (web,api),!canary": the SSH targets it '
                                 "matches (or, with --relays, the relays)")
        parser.add_argument("--relays", action="store_true",
                            help="--selector picks relays by their labels; the command runs locally on their machines")
        parser.add_argument("--target", action="append", default=[], metavar="NAME",
                            help="an SSH target by name (repeat for several)")
        parser.add_argument("--max-concurrency", metavar="N|N%",
                            help="fleet: at most this many (or this share of the) targets at once")
        parser.add_argument("--max-errors", metavar="N|N%",
                            help="fleet: stop dispatching once more than this many runs failed")
        parser.add_argument("--queue-if-offline", action="store_true",
                            help="queue for machines with no relay online and wait, instead of refusing "
                                 "(fleet: instead of recording those copies as not delivered)")
        parser.add_argument("--as", "--user", dest="user", metavar="USERNAME",
                            help="act as this operator, with their permissions, and be recorded as them (default: "
                                 "the operator RELAYHUB_OS_USER_MAP maps your OS user to, else the shell operator)")
        parser.add_argument("--timeout", type=float, metavar="S",
                            help="seconds (default 30; 600 for --package)")
        parser.add_argument("--priority", type=int, default=5)
        parser.add_argument("--no-follow", dest="follow", action="store_false",
                            help="print the command (or batch) id and return at once")
        parser.add_argument("--template", metavar="NAME", help="launch this job template (--selector narrows it)")
        parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a template parameter (repeatable)")
        how = parser.add_argument_group("how it runs (relays need the run_options capability)")
        how.add_argument("--cwd", metavar="DIR", help="working directory on the target (absolute)")
        how.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                         help="an environment variable (repeatable); values never become shell text")
        how.add_argument("--run-as", metavar="USER", help="run through sudo -u USER; the relay's run_as policy "
                                                          "must list USER")
        how.add_argument("--script", metavar="FILE", help="run FILE (or - for stdin) as a script instead of a "
                                                          "command")
        how.add_argument("--interpreter", choices=["sh", "bash", "python3", "perl"], help="for --script (sh)")
        parser.add_argument("--package", action="append", default=[], metavar="ACTION:NAME", help=(
            "instead of a command: install, remove or upgrade the package NAME (NAME, NAME:ARCH or NAME=VERSION) "
            "with the target's package manager (repeatable, one action; relays need the packages capability)"))

    def handle(self, *args, words: list[str], after_dashes: list[str] | None = None, selector: str | None,
               relays: bool, target: list[str], timeout: float, user: str | None, **options) -> None:
        with CtrlC() as self.ctrl_c, trail.origin(Source.CLI, f"{trail.os_user()} (OS user, relay_exec)"):
            self.queued: tuple[str, int] | None = None  # ("command" | "batch", id): what Ctrl-C cancels
            try:
                self.run(words, after_dashes, selector, relays, target, timeout, user, **options)
            except KeyboardInterrupt:
                sys.exit(self.interrupted())

    def run(self, words: list[str], after_dashes: list[str] | None, selector: str | None, relays: bool,
            target: list[str], timeout: float, user: str | None, **options) -> None:
        if options.get("template"):
            try:
                acting = exec_cli.acting_user(user)
            except LookupError as exc:
                raise usage(f"--user: {exc}") from None
            self.run_template(acting, selector=selector, **options)
            return
        if options.pop("param"):
            raise usage("-p/--param goes with --template")
        fleet = selector is not None or bool(target)
        if fleet and after_dashes is None:
            raise usage('with --selector or --target, put the command after "--": relay_exec --selector S -- CMD')
        before, argv = (words, after_dashes) if after_dashes is not None else (words[:1], words[1:])
        if timeout is None:
            timeout = 600.0 if options.get("package") else 30.0
        if timeout <= 0:
            raise usage("--timeout must be positive")
        try:
            acting = exec_cli.acting_user(user)
        except LookupError as exc:
            raise usage(f"--user: {exc}") from None
        if fleet:
            if before:
                raise usage(f"give either MACHINE or --selector/--target, not both (got {' '.join(before)!r})")
            if selector and target:
                raise usage("give --selector or --target, not both")
            if relays and not selector:
                raise usage("--relays goes with --selector")
            if options["ssh"]:
                raise usage("--ssh is for one MACHINE; SSH targets bring their own host, port and user")
        else:
            if relays or options["max_concurrency"] or options["max_errors"]:
                raise usage("--relays, --max-concurrency and --max-errors go with --selector or --target")
            if len(before) != 1:
                raise usage("give one MACHINE before --" if before else "give a MACHINE, or --selector/--target")
        try:
            run_options = exec_cli.run_options_from(options.pop("cwd"), options.pop("env"), options.pop("run_as"),
                                                    options.pop("script"), options.pop("interpreter"))
        except ValueError as exc:
            raise usage(str(exc)) from None
        if wanted := options.pop("package"):
            if argv or run_options or fleet:
                raise usage("--package takes one MACHINE (and --ssh), no command after --, and no run options")
            try:
                run_options = exec_cli.packages_from(wanted)
            except ValueError as exc:
                raise usage(str(exc)) from None
        elif run_options.get("script") is not None and argv:
            raise usage("give a command or --script, not both")
        if not argv and "script" not in run_options and not wanted:
            raise usage("give the command to run (after --)")
        command = " ".join(argv)
        options["run_options"] = run_options
        if fleet:
            self.run_fleet(acting, command, selector=selector, relays=relays, names=target, timeout=timeout,
                           **options)
        else:
            self.run_one(acting, before[0], command, timeout=timeout, **options)

    # -- one machine ---------------------------------------------------------

    def run_one(self, acting, machine_id: str, command: str, *, ssh: str | None, timeout: float, priority: int,
                follow: bool, queue_if_offline: bool, run_options: dict, **options) -> None:
        target = {"target_type": TargetType.LOCAL}
        if ssh:
            match = SSH_TARGET.match(ssh)
            if not match:
                raise usage("--ssh must look like user@host:port")
            target = {"target_type": TargetType.SSH, "target_host": match["host"],
                      "target_username": match["user"] or "",
                      "target_port": int(match["port"]) if match["port"] else None}
        try:
            require_run_permission(acting, machine_id)
        except exceptions.PermissionDenied as exc:
            raise CommandError(str(exc.detail)) from None
        refused = reachability.refusals([machine_id], how=QUEUE_ANYWAY)
        if refused and not queue_if_offline:
            for problem in refused:
                self.stderr.write(problem)
            self.stderr.write("nothing was queued")
            sys.exit(EXIT_UNDELIVERED)
        try:
            with self.ctrl_c.held():  # Ctrl-C meanwhile is taken once it is known what to cancel
                command_id = exec_async(machine_id, command, timeout_ms=int(timeout * 1000), priority=priority,
                                        created_by=exec_cli.recorded_creator(acting), options=run_options, **target)
                self.queued = ("command", command_id)
        except ValidationError as exc:
            raise usage("; ".join(f"{name}: {' '.join(problems)}" for name, problems in exc.message_dict.items())
                        ) from None
        if not follow:
            self.stdout.write(str(command_id))
            return
        if refused:
            self.stderr.write(f"queued command {command_id} on {machine_id}; it waits for a relay to come online "
                              f"(Ctrl-C cancels it): {'; '.join(refused)}")
        else:
            self.stderr.write(f"queued command {command_id} on {machine_id}")
        self.say_if_held(approvals.of(QueuedCommand.objects.get(pk=command_id)))
        sys.exit(self.follow(command_id))

    def say_if_held(self, approval) -> None:
        if approval is not None and approval.state == ApprovalState.PENDING:
            self.stderr.write(f"it awaits approval ({'; '.join(approval.reasons)}): another person approves it in the "
                              f"admin, Approvals #{approval.pk}, or POST /api/v1/approvals/{approval.pk}/approve/ "
                              "(Ctrl-C withdraws it)")

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
        for line in packages.outcome_text(command).splitlines():
            self.stderr.write(line)
        if command.error:
            self.stderr.write(f"{command.status}: {command.error}")
        if command.exit_code is not None:
            return command.exit_code
        return EXIT_FOR_STATUS.get(command.status, 1)

    # -- a fleet -------------------------------------------------------------

    def run_fleet(self, acting, command: str, *, selector: str | None, relays: bool, names: list[str],
                  timeout: float, priority: int, follow: bool, queue_if_offline: bool, max_concurrency: str | None,
                  max_errors: str | None, run_options: dict, **options) -> None:
        data = {"command": command, "timeout_ms": int(timeout * 1000), "priority": priority,
                "max_concurrency": max_concurrency, "max_errors": max_errors, "queue_if_offline": queue_if_offline,
                **run_options}
        if selector is not None:
            data.update(selector=selector, target_type=TargetType.LOCAL if relays else TargetType.SSH)
            self.check_selector(acting, selector, relays)
        else:
            data["targets"] = self.target_ids(acting, names)
        request = BatchCreateSerializer(data=data)
        if not request.is_valid():
            raise usage("; ".join(exec_cli.messages(exceptions.ValidationError(request.errors))))
        try:
            with self.ctrl_c.held():
                batch = create_batch(acting, request.validated_data, created_by=exec_cli.recorded_creator(acting),
                                     how=QUEUE_ANYWAY)
                self.queued = ("batch", batch.pk)
        except exceptions.ValidationError as exc:
            problems = exec_cli.messages(exc)
            if isinstance(exc.detail, dict) and "machine_ids" in exc.detail:  # no relay serves some machine
                for problem in problems:
                    self.stderr.write(problem.removeprefix("machine_ids: "))
                self.stderr.write("nothing was queued")
                sys.exit(EXIT_UNDELIVERED)
            raise usage("; ".join(problems)) from None
        except exceptions.PermissionDenied as exc:
            raise CommandError(str(exc.detail)) from None
        self.follow_batch(batch, follow)

    def follow_batch(self, batch, follow: bool) -> None:
        if not follow:
            self.stdout.write(str(batch.pk))
            return
        self.stderr.write(f"batch {batch.pk}: {len(batch.destinations)} target(s)")
        self.say_if_held(approvals.of(batch))
        items = exec_cli.BatchFollower(batch.pk, sys.stdout, sys.stderr).run()
        for line in exec_cli.summary(items):
            self.stderr.write(line)
        sys.exit(exec_cli.exit_code(items))

    def run_template(self, acting, *, template: str, param: list[str], selector: str | None, follow: bool,
                     queue_if_offline: bool, **options) -> None:
        """--template NAME -p key=value: a launch, as POST /api/v1/templates/{id}/launch/ makes it."""
        found = JobTemplate.objects.filter(name=template).first()
        if found is None or not access.templates_for(acting).filter(pk=found.pk).exists():
            raise usage(f"--template: no job template named {template!r}")
        pairs = [item.partition("=") for item in param]
        if bad := [name for name, equals, _ in pairs if not equals]:
            raise usage(f"-p takes NAME=VALUE, not {bad[0]!r}")
        try:
            with self.ctrl_c.held():
                made = launch(found, acting, {name: value for name, _, value in pairs}, narrowing=selector or "",
                              queue_if_offline=queue_if_offline, created_by=exec_cli.recorded_creator(acting))
                self.queued = ("batch", made.batch.pk)
        except exceptions.ValidationError as exc:
            raise usage("; ".join(exec_cli.messages(exc))) from None
        except exceptions.PermissionDenied as exc:
            raise CommandError(str(exc.detail)) from None
        self.follow_batch(made.batch, follow)

    def check_selector(self, acting, text: str, relays: bool) -> None:
        try:
            parsed = parse_selector(text)
        except LabelError as exc:
            raise usage(f"--selector: {exc}") from None
        if parsed.is_empty:
            raise usage("--selector is empty: it would pick everything")
        if relays and not selection.select_relays(acting, parsed):
            raise usage(f"--selector {text!r} matches no enabled relay")
        if not relays and not selection.select_targets(acting, parsed):
            raise usage(f"--selector {text!r} matches no enabled SSH target")

    def target_ids(self, acting, names: list[str]) -> list[int]:
        wanted = list(dict.fromkeys(names))
        found = dict(selection.targets_for(acting).filter(name__in=wanted).values_list("name", "pk"))
        missing = [name for name in wanted if name not in found]
        if missing:
            raise usage(f"no SSH target named {', '.join(map(repr, missing))}")
        return [found[name] for name in wanted]

    # -- Ctrl-C --------------------------------------------------------------

    def interrupted(self) -> int:
        """Ctrl-C: cancel what this run queued, if it is still going; say what; 130. A second Ctrl-C detaches."""
        self.stopping: list[int] = []  # ids whose end is still awaited
        try:
            if self.queued is None:
                self.stderr.write("interrupted: nothing was queued")
            elif self.queued[0] == "batch":
                self.interrupted_batch(self.queued[1])
            else:
                self.interrupted_command(self.queued[1])
        except KeyboardInterrupt:
            # Wherever the second Ctrl-C lands, even between two lines: detach, never a traceback.
            if self.stopping:
                self.stderr.write(f"detached: the relay is still stopping command(s) "
                                  f"{', '.join(map(str, self.stopping))}; follow them on "
                                  f"/admin/commands/command/<id>/change/ or GET /api/v1/commands/<id>/")
        return EXIT_INTERRUPTED

    def interrupted_command(self, command_id: int) -> None:
        with self.ctrl_c.cancelling():
            command = QueuedCommand.objects.get(pk=command_id)
            try:
                command.cancel()
            except IllegalTransition:
                self.stderr.write(f"interrupted: command {command_id} had ended {command.status}; nothing to cancel")
                return
            self.stopping = [command.pk]
            self.stderr.write(f"interrupted: cancelled command {command.pk} on {command.machine_id}")
        self.confirm([command], lambda command: f"command {command.pk}")

    def interrupted_batch(self, batch_id: int) -> None:
        with self.ctrl_c.cancelling():
            cancelled = batches.cancel(batch_id)
            self.stopping = [command.pk for command in cancelled]
            names = ", ".join(command.target_name or command.machine_id for command in cancelled) or "none"
            self.stderr.write(f"interrupted: batch {batch_id} stopped; cancelled {len(cancelled)} running or "
                              f"queued target(s): {names}")
        self.confirm(cancelled, lambda command: command.target_name or command.machine_id)

    def confirm(self, cancelled: list[QueuedCommand], name) -> None:
        """Wait a little for relays to stop what they were running."""
        self.stopping = [command.pk for command in cancelled if command.status != CommandStatus.CANCELLED]
        for command_id in list(self.stopping):
            ended = wait_until_ended(command_id, CANCEL_WAIT_S)
            self.stderr.write(f"{name(ended)}: {ended.status if ended.is_terminal else 'still stopping'}")
            if ended.is_terminal:
                self.stopping.remove(command_id)


def usage(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)
