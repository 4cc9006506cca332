"""Wake-ups within a process, and what the broker listener does after an outage."""

import threading

from commands.fanout import Fanout
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
