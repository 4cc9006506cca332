"""The ASGI application: relay routes through a lean handler, everything else through Django's own."""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

from relayhub.checks import refuse_to_serve_with_errors

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relayhub.settings")
django_application = get_asgi_application()
refuse_to_serve_with_errors()


class RelayASGIHandler(ASGIHandler):
    """Django with ``RELAY_MIDDLEWARE`` instead of ``MIDDLEWARE``, on a few shared threads.

    Each of the site's mixin-based middlewares costs a relay request two
    thread hand-offs for work a key-authenticated route never needs. And
    Django gives every request a thread of its own for its sync work (signals,
    database), made and joined per request and kept while a long-poll waits;
    relay requests share ``RELAY_THREADS`` long-lived ones instead, so a
    waiting relay holds none.
    """

    def __init__(self) -> None:
        super().__init__()
        self._threads = itertools.cycle([ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay")
                                         for _ in range(settings.RELAYHUB["RELAY_THREADS"])])

    async def __call__(self, scope, receive, send):  # noqa: ANN001, ANN204 - ASGI signature
        if scope["type"] != "http":
            raise ValueError(f"relay routes are HTTP only, not {scope['type']}")
        async with ThreadSensitiveContext(executor=next(self._threads)):
            await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.RELAY_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


relay_application = RelayASGIHandler()


async def application(scope, receive, send):  # noqa: ANN001, ANN201 - ASGI signature
    if scope["type"] == "http" and scope["path"].startswith("/relay/"):
        return await relay_application(scope, receive, send)
    return await django_application(scope, receive, send)


# The web process always hosts long-polls: subscribe to the broker before serving.
from commands import notify  # noqa: E402

notify.notifier.start_listening()
