"""Under ASGI every middleware is async-capable, so a waiting long-poll holds no thread."""

from django.conf import settings
from django.utils.module_loading import import_string


def test_every_middleware_is_async_capable():
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        # Django takes a middleware without the attribute as sync-only.
        assert getattr(middleware, "async_capable", False), f"{path} would put every request on a thread"
