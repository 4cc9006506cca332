"""The live pages' event streams, through the real ASGI stack with a staff session: what a command's stream
sends as its output arrives and as it ends, resuming from Last-Event-ID, the batch's and the dashboard's
streams, heartbeats and the bounded lifetime, and who gets 403 or 404."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings as django_settings
from django.test import Client

from commands import batches, output
from commands.models import Command, OutputChunk

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"


class EventStream:
    """One request to the hub's ASGI application, its answer read event by event."""

    def __init__(self, path: str, cookie: str = "", headers: dict[str, str] | None = None) -> None:
        from relayhub.asgi import application

        path, _, query = path.partition("?")
        headers = {"host": "127.0.0.1", **({"cookie": cookie} if cookie else {}), **(headers or {})}
        self.communicator = ApplicationCommunicator(application, {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)})
        self.buffer, self.ended, self.comments, self.retry = b"", False, [], None

    async def start(self) -> tuple[int, dict[str, str]]:
        await self.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await self.communicator.receive_output(10)
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}

    async def event(self, timeout: float = 5) -> dict | None:
        """The next event (comments and ``retry:`` are noted on the side), or None once the stream has ended."""
        while True:
            while b"\n\n" not in self.buffer:
                if self.ended:
                    return None
                message = await self.communicator.receive_output(timeout)
                self.buffer += message.get("body", b"")
                self.ended = not message.get("more_body", False)
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                if name == "":
                    self.comments.append(value.strip())
                else:
                    fields[name] = value.removeprefix(" ")
            if "retry" in fields:
                self.retry = int(fields["retry"])
            if "data" in fields:
                return {"event": fields.get("event", "message"), "id": fields.get("id"),
                        "data": json.loads(fields["data"])}

    async def close(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(5)


@async_to_sync
async def answer(path: str, cookie: str = "") -> int:
    stream = EventStream(path, cookie)
    status, _ = await stream.start()
    await stream.close()
    return status


def stream_path(command: Command) -> str:
    return f"/admin/commands/command/{command.pk}/stream/"


@pytest.fixture
def executing(relay, make_command):
    command = make_command()
    command.claim(relay)
    command.start(relay, 1)
    return command


def test_a_command_stream_sends_output_as_chunks_arrive_and_ends_with_the_command(
        relay, executing, admin_user_api, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "LIVE_POLL_MS": 60_000}  # only a wake-up can be this quick
    cookie = session_cookie(admin_user_api)
    write = sync_to_async(output.store_chunks)

    @async_to_sync
    async def scenario():
        stream = EventStream(stream_path(executing), cookie)
        status, headers = await stream.start()
        assert status == 200
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
        state = await stream.event()
        assert state["event"] == "state" and state["data"]["status"] == "executing"
        assert state["data"]["finished"] is False and "started_at" in state["data"]["facts"]
        assert stream.retry == django_settings.RELAYHUB["LIVE_RETRY_MS"]

        await write(executing, [{"stream": "stdout", "offset": 0, "data": "hello\n"}])
        started = time.monotonic()
        first = await stream.event(timeout=3)
        assert time.monotonic() - started < 2
        assert first == {"event": "output", "id": "6:0", "data": {
            "status": "executing", "finished": False, "output_truncated": False,
            "stdout": "hello\n", "stdout_next_offset": 6, "stderr": "", "stderr_next_offset": 0}}
        await write(executing, [{"stream": "stderr", "offset": 0, "data": "warn\n"},
                                {"stream": "stdout", "offset": 6, "data": "world\n"}])
        second = await stream.event(timeout=3)
        assert (second["id"], second["data"]["stdout"], second["data"]["stderr"]) == ("12:5", "world\n", "warn\n")

        await sync_to_async(executing.finish)(relay, 1, status="completed", exit_code=0,
                                              output="hello\nworld\nbye\n", stderr="warn\n")
        last = await stream.event(timeout=3)
        assert last["event"] == "output" and last["data"]["stdout"] == "bye\n" and last["data"]["finished"]
        assert last["id"] == "16:5"
        ended = await stream.event(timeout=3)
        assert ended["event"] == "state" and ended["data"]["status"] == "completed"
        assert ended["data"]["finished"] is True and ended["data"]["facts"]["exit_code"] == "0"
        assert await stream.event(timeout=3) is None  # the stream is over once the command is
        await stream.communicator.wait(5)

    scenario()


def test_a_reconnect_resumes_after_the_last_event_id_without_repeating_output(executing, admin_user_api):
    output.store_chunks(executing, [{"stream": "stdout", "offset": 0, "data": "hello\nworld\n"},
                                    {"stream": "stderr", "offset": 0, "data": "warn\n"}])
    cookie = session_cookie(admin_user_api)

    @async_to_sync
    async def scenario():
        # A first connect starts where the page's own rendering ended; a reconnect where its last event did.
        first = EventStream(stream_path(executing) + "?stdout_offset=12&stderr_offset=0", cookie)
        await first.start()
        got = [await first.event(), await first.event()]
        await first.close()
        resumed = EventStream(stream_path(executing) + "?stdout_offset=0&stderr_offset=0", cookie,
                              {"last-event-id": "6:5"})
        await resumed.start()
        again = [await resumed.event(), await resumed.event()]
        await resumed.close()
        return got, again

    got, again = scenario()
    assert [e["event"] for e in got] == ["output", "state"]
    assert (got[0]["data"]["stdout"], got[0]["data"]["stderr"], got[0]["id"]) == ("", "warn\n", "12:5")
    assert (again[0]["data"]["stdout"], again[0]["data"]["stderr"], again[0]["id"]) == ("world\n", "", "12:5")


def test_without_a_wake_up_the_stream_still_polls_and_keeps_the_connection_alive(
        executing, admin_user_api, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "LIVE_POLL_MS": 200, "LIVE_HEARTBEAT_S": 0.3, "LIVE_STREAM_S": 2}
    cookie = session_cookie(admin_user_api)

    @async_to_sync
    async def scenario():
        stream = EventStream(stream_path(executing), cookie)
        await stream.start()
        assert (await stream.event())["event"] == "state"
        # Written as another process would, with no wake-up reaching this one.
        await sync_to_async(OutputChunk.objects.create)(command=executing, stream="stdout", offset=0, data="x\n",
                                                        size=2)
        polled = await stream.event(timeout=3)
        started = time.monotonic()
        assert await stream.event(timeout=5) is None  # its lifetime is over: the browser reconnects
        return polled, time.monotonic() - started, stream.comments

    polled, ended_after, comments = scenario()
    assert polled["data"]["stdout"] == "x\n"
    assert ended_after < 3
    assert "keep-alive" in comments


def test_a_user_who_may_not_see_the_command_gets_404_a_non_staff_user_403_and_anonymous_the_login(
        executing, make_operator, issue_relay, admin_user_api):
    from django.contrib.auth.models import User

    other = make_operator("other", view=[issue_relay("machine-2", "relay-2").relay])
    viewer = make_operator("viewer", view=[executing.claimed_by])
    plain = User.objects.create_user("plain", password="pw-plain-123456")
    assert answer(stream_path(executing), session_cookie(viewer)) == 200
    assert answer(stream_path(executing), session_cookie(other)) == 404
    assert answer(stream_path(executing), session_cookie(plain)) == 403
    assert answer(stream_path(executing)) == 302, "anonymous: to the login page, as every admin page"
    assert answer("/admin/commands/command/999999/stream/", session_cookie(admin_user_api)) == 404


def test_a_batch_stream_sends_the_targets_that_changed_and_ends_with_the_batch(relay, issue_relay, admin_user_api):
    from tests.conftest import mark_online

    second = issue_relay("machine-2", "relay-2").relay
    mark_online(relay, second)
    batch = batches.create(machine_ids=["machine-1", "machine-2"], command="true", timeout_ms=30_000)
    cookie = session_cookie(admin_user_api)
    copies = {command.machine_id: command for command in batch.commands.all()}

    def run(command, claimant, exit_code):
        command.claim(claimant)
        command.start(claimant, 1)
        command.finish(claimant, 1, status="completed" if exit_code == 0 else "failed", exit_code=exit_code,
                       output=f"out of {command.machine_id}\n")

    @async_to_sync
    async def scenario():
        stream = EventStream(f"/admin/commands/commandbatch/{batch.pk}/stream/", cookie)
        assert (await stream.start())[0] == 200
        first = await stream.event()
        await sync_to_async(run)(copies["machine-1"], relay, 0)
        one_ended = await stream.event()
        await sync_to_async(run)(copies["machine-2"], second, 3)
        last = await stream.event()
        while last["data"]["status"] == "running":  # a claim or start seen by a poll in between
            last = await stream.event()
        assert await stream.event() is None
        return first, one_ended, last

    first, one_ended, last = scenario()
    assert first["event"] == "batch" and first["data"]["status"] == "running"
    assert [t["index"] for t in first["data"]["targets"]] == [0, 1]
    assert first["data"]["counts"]["pending"] == 2
    # Only what changed: the first target, ended.
    assert [(t["index"], t["status"], t["output"]) for t in one_ended["data"]["targets"]] == [
        (0, "completed", "out of machine-1\n")]
    assert last["data"]["status"] == "failed" and last["data"]["counts"]["failed_runs"] == 1
    assert [(t["index"], t["exit_code"]) for t in last["data"]["targets"]] == [(1, 3)]


def test_a_batch_stream_is_404_for_a_user_who_may_not_see_the_batch(relay, issue_relay, make_operator):
    from tests.conftest import mark_online

    mark_online(relay)
    batch = batches.create(machine_ids=["machine-1"], command="true", timeout_ms=30_000)
    path = f"/admin/commands/commandbatch/{batch.pk}/stream/"
    assert answer(path, session_cookie(make_operator("viewer", view=[relay]))) == 200
    assert answer(path, session_cookie(make_operator("other", view=[issue_relay("machine-2", "r2").relay]))) == 404


def test_the_dashboard_stream_counts_what_the_user_may_see_as_it_changes(
        relay, issue_relay, make_command, make_operator, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "LIVE_DASHBOARD_POLL_MS": 60_000}  # only a wake-up is this quick
    hidden = issue_relay("machine-2", "relay-2").relay
    viewer = make_operator("viewer", view=[relay])
    make_command(machine_id=hidden.machine_id)
    cookie = session_cookie(viewer)

    @async_to_sync
    async def scenario():
        stream = EventStream("/admin/live/", cookie)
        assert (await stream.start())[0] == 200
        first = await stream.event()
        await sync_to_async(make_command)(machine_id=hidden.machine_id)  # not the viewer's: no new numbers
        await sync_to_async(make_command)()
        queued = await stream.event(timeout=4)
        await stream.close()
        return first, queued

    first, queued = scenario()
    assert first["event"] == "numbers"
    assert first["data"]["pending-now"] == 0 and first["data"]["relays-offline"] == 1
    assert first["data"]["oldest-pending"] == "none waiting"
    assert queued["data"]["pending-now"] == 1 and queued["data"]["count-pending"] == 1
    assert queued["data"]["commands-24h"] == 1 and queued["data"]["oldest-pending"].startswith("the oldest for")


def test_the_dashboard_stream_is_for_staff_only(db):
    from django.contrib.auth.models import User

    assert answer("/admin/live/") == 302
    assert answer("/admin/live/", session_cookie(User.objects.create_user("plain", password="pw-plain-12345"))) == 403


def test_a_look_gives_its_database_connection_back(executing):
    from django.db import connection

    from relayhub.web import sse

    # Under the test's async_to_sync, a thread-sensitive look runs on this very thread: its connection is ours to see.
    assert async_to_sync(sse.in_db)(lambda: Command.objects.filter(pk=executing.pk).exists())
    assert connection.connection is None


def test_under_wsgi_a_stream_answers_501_at_once_and_the_page_polls(executing, admin_client_):
    # A WSGI server would buffer the whole stream; the page takes the 501 as a failed stream and polls.
    answer_ = admin_client_.get(stream_path(executing))
    assert answer_.status_code == 501 and not answer_.streaming
