"""Relay wire routes, each served with and without a trailing slash."""

from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from assignments import relay_views as relays
from commands import longpoll
from commands import relay_views as commands
from configpush import relay_views as pushes
from credentials import relay_views as credentials


def route(path: str, view, name: str):
    return re_path(rf"^relay/{path}/?$", view.as_view(), name=name)


urlpatterns = [
    route("verify", relays.VerifyView, "relay-verify"),
    route("heartbeat", relays.HeartbeatView, "relay-heartbeat"),
    route("status", relays.StatusView, "relay-status"),
    route("commands", commands.PendingCommandsView, "relay-commands"),
    route("commands/claim", commands.ClaimView, "relay-claim"),
    route("commands/result", commands.ResultView, "relay-result"),
    # Extensions used by the bundled agent; original relays never call them.
    re_path(r"^relay/commands/next/?$", csrf_exempt(longpoll.next_commands), name="relay-next"),
    route("commands/started", commands.StartedView, "relay-started"),
    route("commands/output", commands.OutputView, "relay-output"),
    route("commands/results", commands.ResultsView, "relay-results"),
    route("config-pushes", pushes.PendingPushesView, "relay-config-pushes"),
    route("config/pending", pushes.PendingPushesAliasView, "relay-config-pending"),
    route("config-pushes/ack", pushes.AckView, "relay-config-ack"),
    route("config/ack", pushes.AckView, "relay-config-ack-alias"),
    route("shared-credentials", credentials.SharedCredentialsView, "relay-shared-credentials"),
    route("credentials/shared", credentials.SharedCredentialsView, "relay-shared-credentials-alias"),
]
