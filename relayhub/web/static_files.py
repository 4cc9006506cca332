from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from relayhub.web.middleware import SyncAndAsync


class AsyncCapableWhiteNoiseMiddleware(SyncAndAsync, WhiteNoiseMiddleware):
    """WhiteNoise that does not force every ASGI request onto a thread.

    The lookup is an in-memory dict (or a stat with finders), cheap enough to
    run on the event loop; everything that is not a static file is awaited.
    """

    def __init__(self, get_response=None, settings=None) -> None:
        super().__init__(get_response, **({"settings": settings} if settings is not None else {}))
        self.run_as(get_response)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    def _static_file(self, request: HttpRequest):
        if self.autorefresh:
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        static_file = self._static_file(request)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)
