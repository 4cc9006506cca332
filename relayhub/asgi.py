import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relayhub.settings")
application = get_asgi_application()

# The web process always hosts long-polls: subscribe to the broker before serving.
from commands import notify  # noqa: E402

notify.notifier.start_listening()
