"""Wake-ups within a process, and what the broker listener does after an outage."""

import threading
import time
import uuid

import pytest
from django.conf import settings

from commands.fanout import CHANNEL, Fanout, PostgresFanout, RedisFanout
from commands.notify import LocalNotifier


class FlakyBroker(Fanout):
    """Drops its first connection right after subscribing; the second one stays up until released."""

    name = "flaky"

    def __init__(self, notifier: LocalNotifier) -> None:
        super().__init__(notifier)
        self.connections = 0
        self.reconnected = threading.Event()
        self.release = threading.Event()

    def messages(self, on_subscribed):
        self.connections += 1
        on_subscribed()
        if self.connections == 1:
            raise ConnectionError("broker went away")
        self.reconnected.set()
        self.release.wait(10)
        yield from ()


def test_every_waiter_looks_again_after_the_listener_reconnects():
    notifier = LocalNotifier()
    broker = FlakyBroker(notifier)
    woken = notifier.subscribe("machine:m1")
    seen = notifier.published("machine:m1")
    try:
        broker.ensure_listening()
        assert woken.wait(5), "the outage itself wakes every waiter"
        woken.clear()
        assert broker.reconnected.wait(5)
        # Publishes made while the listener was away are lost: being back must wake waiters again.
        assert woken.wait(5)
        assert notifier.published("machine:m1") >= seen + 2
    finally:
        broker.stop()
        broker.release.set()
        notifier.unsubscribe("machine:m1", woken)


def test_a_publish_counts_for_its_topic_only():
    notifier = LocalNotifier()
    before = notifier.published("machine:a")
    notifier.publish_local("machine:b" if hash("machine:b") % 1024 != hash("machine:a") % 1024 else "machine:c")
    assert notifier.published("machine:a") == before
    notifier.publish_local("machine:a")
    assert notifier.published("machine:a") == before + 1


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs a Redis server (REDIS_URL; .ci/run sets it)")
def test_several_wake_ups_go_to_redis_in_one_pipeline_and_each_arrives():
    import redis

    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    listener.get_message(timeout=1)  # the subscription is confirmed before anything is published
    # Topics of this run only: other tests and hubs publish to the same channel of the shared Redis.
    run = uuid.uuid4().hex[:8]
    topics = [f"command:1{run}", f"command:2{run}", f"machine:m1-{run}"]
    try:
        RedisFanout(LocalNotifier(), settings.REDIS_URL).broadcast_many(topics)
        received, deadline = [], time.monotonic() + 5
        while len(received) < len(topics) and time.monotonic() < deadline:
            message = listener.get_message(timeout=0.5)
            topic = message["data"].decode().partition("|")[2] if message is not None else None
            if topic in topics:
                received.append(topic)
    finally:
        listener.close()
    assert received == topics


def test_publish_many_wakes_a_local_waiter_of_each_topic():
    notifier = LocalNotifier()
    waiting = {topic: notifier.subscribe(topic) for topic in ("command:1", "command:2")}
    notifier.publish_many(["command:1", "command:2"])
    assert all(event.is_set() for event in waiting.values())


@pytest.mark.django_db(transaction=True)
def test_several_wake_ups_go_to_postgres_in_one_statement_and_each_arrives():
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL")
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    topics = ["command:1", "command:2", "machine:m1"]
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        PostgresFanout(LocalNotifier()).broadcast_many(topics)
        received = [notice.payload.partition("|")[2] for notice in listener.notifies(timeout=5, stop_after=3)]
    assert received == topics


def test_an_async_listener_hears_each_of_its_topics_and_every_topic_of_a_kind():
    import asyncio

    notifier = LocalNotifier()

    async def scenario() -> list[bool]:
        heard = []
        with notifier.listen("command:1", "output:1") as one, notifier.listen("machine:*") as every_machine:
            for topic in ("output:1", "command:1", "command:2"):
                notifier.publish_local(topic)
                heard.append(await one.wait(0.2))
            notifier.publish_local("machine:web-01")
            heard.append(await every_machine.wait(0.2))
            notifier.publish_local("command:1")
            heard.append(await every_machine.wait(0.2))
        return heard

    assert asyncio.run(scenario()) == [True, True, False, True, False]
    assert not notifier._waiters  # every subscription is gone with its block


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_published_when_it_dispatches_and_when_a_copy_ends(relay, monkeypatch):
    from commands import batches, notify

    published = []
    monkeypatch.setattr(notify.notifier, "publish_many", lambda topics: published.extend(topics))
    from tests.conftest import mark_online

    mark_online(relay)
    batch = batches.create(machine_ids=["machine-1"], command="true", timeout_ms=30_000)
    assert notify.batch_topic(batch.pk) in published
    published.clear()
    [command] = batch.commands.all()
    command.claim(relay)
    command.start(relay, 1)
    command.finish(relay, 1, status="completed", exit_code=0)
    assert notify.command_topic(command.pk) in published and notify.batch_topic(batch.pk) in published
