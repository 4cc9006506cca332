"""Relay wire routes, each served with and without a trailing slash.

The hot routes are async views (``relayhub.relay.routes``); the rest are DRF views.
"""

from django.urls import re_path

from agentupdates import relay_views as agentupdates
from commands import longpoll
from commands import relay_views as commands
from configpush import relay_views as pushes
from credentials import relay_views as credentials
from relayhub.relay import hello, verify


def route(path: str, view, name: str):
    return re_path(rf"^relay/{path}/?$", view.as_view() if isinstance(view, type) else view, name=name)


urlpatterns = [
    route("verify", verify.VerifyView, "relay-verify"),
    route("heartbeat", commands.heartbeat_route, "relay-heartbeat"),
    route("status", credentials.StatusView, "relay-status"),
    route("commands", commands.PendingCommandsView, "relay-commands"),
    route("commands/claim", commands.ClaimView, "relay-claim"),
    route("commands/result", commands.result, "relay-result"),
    # Extensions used by the bundled agent; original relays never call them.
    route("hello", hello.HelloView, "relay-hello"),
    route("commands/next", longpoll.next_commands, "relay-next"),
    route("commands/started", commands.started, "relay-started"),
    route("commands/output", commands.OutputView, "relay-output"),
    route("commands/results", commands.results_batch, "relay-results"),
    route("commands/full-output", commands.full_output_upload, "relay-full-output"),
    route(rf"agent-releases/(?P<version>{agentupdates.VERSION_PATTERN})/wheel", agentupdates.ReleaseWheelView,
          "relay-agent-release-wheel"),
    route("config-pushes", pushes.PendingPushesView, "relay-config-pushes"),
    route("config/pending", pushes.PendingPushesAliasView, "relay-config-pending"),
    route("config-pushes/ack", pushes.AckView, "relay-config-ack"),
    route("config/ack", pushes.AckView, "relay-config-ack-alias"),
    route("shared-credentials", credentials.SharedCredentialsView, "relay-shared-credentials"),
    route("credentials/shared", credentials.SharedCredentialsView, "relay-shared-credentials-alias"),
]
