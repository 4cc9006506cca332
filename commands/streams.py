"""The command and batch pages' live streams (Server-Sent Events, ``relayhub.web.sse``).

A stream wakes on the notifier (``commands.notify``): ``command:<id>`` when a command ends, ``output:<id>``
when its output chunks arrive, ``batch:<id>`` when a batch dispatches copies or one of them ends. It also
looks at the database every ``LIVE_POLL_MS``, for what is not published (a claim, a start) and for a hub
whose processes share no broker. Its events carry what the pages' JSON endpoints answer, so that command.js
and batch.js draw both transports with one renderer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from commands import admin_views, batches, notify, output, visibility
from commands.choices import CommandStatus, Stream
from commands.models import Command, CommandBatch
from relayhub.web import sse
from relayhub.web.fields import INT64_MAX, wire_id

LAST_OFFSETS = re.compile(r"^(\d{1,19}):(\d{1,19})$")
# Before a relay starts it, a command has no output to read.
SILENT = frozenset({CommandStatus.PENDING, CommandStatus.AWAITING_APPROVAL})
Look = Callable[[], tuple[list[bytes], bool]]


def staff_user(request: HttpRequest) -> Any:
    """The signed-in user, if the admin lets them in (``AdminSite.has_permission``: active staff); else 403."""
    if not admin.site.has_permission(request):
        raise PermissionDenied("the admin's live streams are for signed-in staff")
    return request.user


async def refusal(request: HttpRequest) -> HttpResponse | None:
    """Who may not open a stream, before anything else: anonymous users go to the login page, as on every admin
    page; signed-in users who are not active staff get 403; then, under WSGI, 501 (``sse.not_served_here``)."""
    if not await sse.in_db(lambda: request.user.is_authenticated):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    await sse.in_db(staff_user, request)
    return sse.not_served_here(request)


async def events(look: Look, *topics: str, poll: str = "LIVE_POLL_MS",
                 min_gap_s: float = 0.0) -> AsyncIterator[bytes]:
    """``look``'s events (run on a thread) as they come: woken by ``topics``, or every ``poll`` (a setting)."""
    with notify.notifier.listen(*topics) as subscription:
        async for chunk in sse.follow(lambda: sse.in_db(look), subscription.wait, min_gap_s=min_gap_s,
                                      **sse.timings(poll)):
            yield chunk


def _offsets(request: HttpRequest) -> dict[str, int]:
    """Where the page's output ends: the last event's id when the browser reconnects, else the page's own."""
    resumed = LAST_OFFSETS.match(sse.last_event_id(request))
    if resumed:
        values = [int(resumed.group(1)), int(resumed.group(2))]
    else:
        values = [wire_id(request.GET.get(f"{stream}_offset", "0")) or 0 for stream in Stream.values]
    return {stream: min(value, INT64_MAX) for stream, value in zip(Stream.values, values)}


class CommandFollower:
    def __init__(self, pk: int, offsets: dict[str, int]) -> None:
        self.pk, self.offsets = pk, offsets
        self.shown: tuple | None = None  # what the last state event showed

    def look(self) -> tuple[list[bytes], bool]:
        command = Command.objects.filter(pk=self.pk).first()
        if command is None:
            return [], True  # deleted meanwhile
        events: list[bytes] = []
        if command.status not in SILENT:
            body: dict[str, Any] = {"status": command.status, "finished": command.is_terminal,
                                    "output_truncated": command.output_truncated}
            for stream in Stream.values:
                body[stream], body[f"{stream}_next_offset"] = output.since(command, stream, self.offsets[stream])
            if body["stdout"] or body["stderr"]:
                self.offsets = {stream: body[f"{stream}_next_offset"] for stream in Stream.values}
                events.append(sse.event(body, name="output", id="{stdout}:{stderr}".format(**self.offsets)))
        shown = (command.status, command.cancel_requested, command.output_truncated, command.error)
        if shown != self.shown:
            self.shown = shown
            events.append(sse.event(admin_views.page_state(command), name="state"))
        return events, command.is_terminal


def _open_command(request: HttpRequest, object_id: str) -> CommandFollower:
    pk = wire_id(object_id)
    if pk is None or not visibility.commands_for(staff_user(request)).filter(pk=pk).exists():
        raise Http404("no such command")
    return CommandFollower(pk, _offsets(request))


async def command_stream(request: HttpRequest, object_id: str) -> HttpResponse:
    """``GET /admin/commands/command/<id>/stream/``: the command page, live.

    Permission: the page's own. Active staff signed in to the admin (403 otherwise) who may see the
    command (``commands.visibility.commands_for``: a relay of its machine they may view, or their own
    command; 404 otherwise).

    Events: ``output``, the output endpoint's JSON (``/api/v1/commands/<id>/output/``) whenever there is
    more, its ``id`` the next offsets (``stdout:stderr``): a reconnect resumes from ``Last-Event-ID``, a
    first connect from ``?stdout_offset=&stderr_offset=``. ``state``, the state endpoint's JSON, on connect
    and whenever the status or error changes. The stream ends once the command has.
    """
    if refused := await refusal(request):
        return refused
    follower = await sse.in_db(_open_command, request, object_id)
    return sse.response(events(follower.look, notify.command_topic(follower.pk), notify.output_topic(follower.pk)))


def _target(index: int, item: batches.Target) -> dict[str, Any]:
    """A target as ``/api/v1/batches/<id>/`` gives it (fleet.batch_api.TargetSerializer), with its index."""
    command = item.command
    return {"index": index, "machine_id": item.machine_id, "name": item.name, "host": item.host,
            "status": item.status, "delivered": None if command is None else not item.undelivered,
            "command_id": None if command is None else command.pk,
            "exit_code": None if command is None else command.exit_code,
            "duration_ms": None if command is None else command.duration_ms,
            "output": "" if command is None else command.output,
            "stderr": "" if command is None else command.stderr,
            "error": "" if command is None else command.error}


class BatchFollower:
    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.shown: tuple[dict, list[dict]] | None = None

    def look(self) -> tuple[list[bytes], bool]:
        batch = CommandBatch.objects.filter(pk=self.pk).first()
        if batch is None:
            return [], True
        items = batches.targets(batch)
        summary = {"id": batch.pk, "status": batches.overall_status(batch, items), "stopped": batch.stopped,
                   "counts": batches.counts(items)}
        targets = [_target(index, item) for index, item in enumerate(items)]
        done = summary["status"] not in ("running", CommandStatus.AWAITING_APPROVAL)
        if self.shown is not None and self.shown == (summary, targets):
            return [], done
        before = self.shown[1] if self.shown is not None else []
        changed = [target for target in targets if target["index"] >= len(before) or before[target["index"]] != target]
        self.shown = (summary, targets)
        return [sse.event({**summary, "targets": changed}, name="batch")], done


def _open_batch(request: HttpRequest, object_id: str) -> BatchFollower:
    pk = wire_id(object_id)
    if pk is None or not batches.visible_to(staff_user(request), CommandBatch.objects.filter(pk=pk)).exists():
        raise Http404("no such batch")
    return BatchFollower(pk)


async def batch_stream(request: HttpRequest, object_id: str) -> HttpResponse:
    """``GET /admin/commands/commandbatch/<id>/stream/``: the batch page, live.

    Permission: the page's own. Active staff signed in to the admin (403 otherwise) who may see the batch
    (``commands.batches.visible_to``: every machine of it, or their own batch; 404 otherwise).

    Events: ``batch``, ``/api/v1/batches/<id>/``'s status, stopped, counts and targets, where ``targets``
    holds only those changed since the last event (all of them on connect), each with its ``index``.
    The stream ends once every target has.
    """
    if refused := await refusal(request):
        return refused
    follower = await sse.in_db(_open_batch, request, object_id)
    return sse.response(events(follower.look, notify.batch_topic(follower.pk)))
