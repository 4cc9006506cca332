"""The ASGI application: relay routes through a lean handler, everything else through Django's own."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relayhub.settings")
django_application = get_asgi_application()


class RelayASGIHandler(ASGIHandler):
    """Django with ``RELAY_MIDDLEWARE`` instead of ``MIDDLEWARE``.

    Each of the site's mixin-based middlewares costs a relay request two
    thread hand-offs for work a key-authenticated route never needs.
    """

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
