"""OpenAPI description of the relay wire protocol; documentation only."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers


class RelayKeyScheme(OpenApiAuthenticationExtension):
    target_class = "relayhub.relay.auth.RelayKeyAuthentication"
    name = "RelayApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class WireCommand(serializers.Serializer):
    _id = serializers.CharField()
    command = serializers.CharField()
    targetType = serializers.ChoiceField(["local", "ssh"])
    targetHost = serializers.CharField(required=False)
    targetPort = serializers.IntegerField(required=False)
    targetUsername = serializers.CharField(required=False)
    timeoutMs = serializers.IntegerField()
    createdAt = serializers.IntegerField(required=False, help_text="epoch milliseconds")
    attempt = serializers.IntegerField(required=False, help_text="fencing token, grows with each claim")
    probe = serializers.BooleanField(required=False, help_text=(
        "Extension: test connection. Connect and log in to the SSH target, run nothing, and report one JSON "
        "object as the output; relays without it run the command, `true`."))
    workingDirectory = serializers.CharField(required=False, help_text="Extension (capability run_options).")
    environment = serializers.DictField(child=serializers.CharField(), required=False,
                                        help_text="Extension (run_options): variables for the command.")
    runAs = serializers.CharField(required=False, help_text=(
        "Extension (run_options): run through sudo -u, if the relay's run_as policy lists the user."))
    script = serializers.CharField(required=False, help_text=(
        "Extension (run_options): run this as a file by `interpreter` instead of `command`, which names it."))
    interpreter = serializers.CharField(required=False, help_text="Extension (run_options): sh, bash, python3, perl.")
    packages = inline_serializer("WirePackages", {
        "action": serializers.ChoiceField(["install", "remove", "upgrade"]),
        "names": serializers.ListField(child=serializers.CharField())}, required=False, help_text=(
        "Extension (capability packages): install, remove or upgrade these packages with the target's package "
        "manager instead of running `command`, which for such a command fails on an agent without the "
        "extension; report packageResult with the result."))
    agentUpdate = inline_serializer("WireAgentUpdate", {
        "version": serializers.CharField(), "sha256": serializers.CharField(), "signature": serializers.CharField(),
        "size": serializers.IntegerField(allow_null=True), "url": serializers.CharField()}, required=False, help_text=(
        "Extension (capability self_update): update the relay agent to this signed release, downloaded from `url` "
        "with the relay's key and checked against sha256 and the Ed25519 signature, instead of running `command`, "
        "which for such a command fails on an agent without the extension."))
    started = serializers.BooleanField(required=False, help_text=(
        "Extension (in answers to a `next` with a `session`): the claim started the command; do not post "
        "`started` for it."))
    fullOutput = inline_serializer("FullOutputRequest", {
        "maxBytes": serializers.IntegerField(), "overBytes": serializers.IntegerField()}, required=False,
        help_text=("Extension (in `next` answers): keep each stream longer than overBytes whole, up to maxBytes, "
                   "and upload it to /relay/commands/full-output once the command ends."))


class RelayError(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField()


def success(name: str, **fields: serializers.Field):
    return inline_serializer(name, {"success": serializers.BooleanField(), **fields})


ERRORS = {400: RelayError, 401: RelayError, 403: RelayError, 404: RelayError}
RELAY_ID = OpenApiParameter("relayId", str, description="optional; must be the caller's own assignmentId")


def relay_schema(*, request=None, response, parameters=(), extra_errors=None, summary: str = ""):
    return extend_schema(
        tags=["relay"], request=request, parameters=list(parameters), summary=summary,
        responses={200: response, **ERRORS, **(extra_errors or {})},
    )
