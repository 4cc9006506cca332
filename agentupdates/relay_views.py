"""``GET /relay/agent-releases/<version>/wheel``: a release's wheel, for a relay with a valid key (extension)."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from agentupdates.models import AgentRelease
from relayhub.relay.views import RelayAPIView

VERSION_PATTERN = r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}"


class ReleaseWheelView(RelayAPIView):
    @extend_schema(tags=["relay"], summary="Download an agent release's wheel (extension, capability self_update)",
                   description="The bytes of the wheel; the relay checks them against the sha256 and the Ed25519 "
                               "signature its update_agent command carries, with the release key it pinned.",
                   responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
                              404: OpenApiResponse(description="no such release")})
    def get(self, request: Request, version: str) -> FileResponse:
        release = AgentRelease.objects.filter(version=version).first()
        if release is None:
            raise NotFound(f"no agent release {version}")
        return FileResponse(release.wheel.open("rb"), content_type="application/octet-stream", as_attachment=True,
                            filename=release.filename)
