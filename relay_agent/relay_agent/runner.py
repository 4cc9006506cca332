"""Runs one claimed command: checks it against the relay's policy, runs it locally or over SSH, streams its output."""

from __future__ import annotations

from collections.abc import Sequence

from . import package_names, packages, run_options
from .config import AgentConfig, CommandRefused
from .executor import LocalExecutor
from .hub import HubClient, HubExtensions
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult
from .package_names import PackageRefused, PackageRequest
from .probe import probe_ssh
from .selfupdate import Updater
from .slots import RunningCommand
from .ssh import SSHPool
from .streaming import OutputStreamer

log = get_logger(AGENT_LOGGER)

SHUTDOWN_ERROR = "agent shutting down"
DEFAULT_TIMEOUT_MS = 30_000


class CommandRunner:
    def __init__(
        self,
        hub: HubClient,
        extensions: HubExtensions,
        config: AgentConfig,
        local: LocalExecutor,
        ssh: SSHPool,
        output_flush_ms: int,
        updater: Updater | None = None,
    ) -> None:
        self.updater = updater
        self.hub = hub
        self.extensions = extensions
        self.config = config
        self.local = local
        self.ssh = ssh
        self.output_flush_ms = output_flush_ms

    def execute(self, command: dict, running: RunningCommand) -> ExecResult | None:
        if self.extensions.supported is True and running.attempt is not None:
            # Announced by the poller: run only what the hub recorded as started.
            if not running.announced:
                return None
            if running.cancel_requested:
                return ExecResult(status="cancelled", error="cancelled before it started")
        if command.get("agentUpdate") is not None:
            if self.updater is None:
                return ExecResult.refused("this relay agent does not update itself")
            return self.updater.run(command, running)
        text = command.get("command")
        target_type = command.get("targetType") or "local"
        timeout_ms = command.get("timeoutMs") or DEFAULT_TIMEOUT_MS
        has_script = command.get("script") is not None
        wanted = command.get("packages")  # a package command: its `command` is only for agents without them
        if wanted is None and not has_script and (not isinstance(text, str) or not text.strip()):
            return ExecResult.refused("command is empty")
        if not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            return ExecResult.refused(f"invalid timeoutMs {timeout_ms!r}")
        # A probe runs nothing, so allowed_commands does not apply to it; ssh_targets does.
        probe = bool(command.get("probe"))
        request = None
        try:
            options = run_options.parse(command, allow_list=self.config.allowed_commands is not None,
                                        run_as_users=self.config.run_as_users)
            if wanted is not None:
                request = self._package_request(wanted, options, probe)
            argv = None if probe or has_script or request else self.config.authorize_command(text)
            refusal = None
        except (CommandRefused, run_options.OptionsRefused, PackageRefused) as exc:
            options, argv, refusal, request = run_options.RunOptions(), None, str(exc), None
        if probe and target_type != "ssh":
            refusal = f"a probe needs targetType 'ssh', not {target_type!r}"
        # With an allow-list, only the allowed argument list runs, and without a shell.
        runnable = text if argv is None else argv
        stdin = None
        if options.any:
            runnable, stdin = options.entry_argv(), options.launcher(text if argv is None else argv).encode(
                "utf-8", "surrogatepass")
        host, port = command.get("targetHost"), command.get("targetPort") or 22
        try:
            port = int(port)
        except (TypeError, ValueError):
            return ExecResult.refused(f"invalid targetPort {port!r}")
        if refusal is None and target_type == "ssh":
            refusal = "ssh command without targetHost" if not host else self.config.check_ssh_target(host, port)
        elif refusal is None and target_type != "local":
            refusal = f"unknown targetType {target_type!r}"
        if refusal:
            log.warning("command refused", commandId=running.command_id, reason=refusal)
            return ExecResult.refused(refusal)
        log.info(
            "command started",
            commandId=running.command_id,
            attempt=running.attempt,
            targetType=target_type,
            targetHost=host or "",
            probe=probe,
            runAs=options.run_as or "",
            script=options.script is not None,
            packages=str(request.action) + " " + " ".join(map(str, request.packages)) if request else "",
        )
        if probe:
            return probe_ssh(self.ssh, str(host), port, command.get("targetUsername"))
        streamer = OutputStreamer(
            self.hub,
            running.command_id,
            running.attempt,
            running.cancel,
            interval=self.output_flush_ms / 1000,
            enabled=self.extensions.supported is True,
            announced=running.announced,
        )
        streamer.start()

        def step(what: str | Sequence[str], step_timeout_ms: int, stream: bool = True,
                 stdin: bytes | None = None) -> ExecResult:
            on_output = streamer.add if stream else None
            if target_type == "ssh":
                return self.ssh.run(str(host), port, command.get("targetUsername"), what, step_timeout_ms,
                                    on_output, running.cancel, stdin)
            return self.local.run(what, step_timeout_ms, on_output, running.cancel, stdin)

        try:
            if request is not None:
                result = packages.run(request, step, int(timeout_ms))
            else:
                result = step(runnable, int(timeout_ms), True, stdin)
        finally:
            streamer.close()
        if running.shutting_down and result.status == "cancelled":
            result.status, result.error = "failed", SHUTDOWN_ERROR
        return result

    def _package_request(self, wanted: object, options: run_options.RunOptions, probe: bool) -> PackageRequest:
        """The package command, checked: its names, and each ``package ACTION NAME`` against an allow-list."""
        request = package_names.parse_request(wanted)
        if options.any or probe:
            raise PackageRefused("a package command takes no working directory, environment, run-as user or script")
        for line in request.policy_lines():
            try:
                self.config.authorize_command(line)
            except CommandRefused as exc:
                raise CommandRefused(f"{line}: {exc}") from None
        return request
