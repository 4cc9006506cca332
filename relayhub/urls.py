from django.contrib import admin
from django.urls import include, path, re_path, reverse_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from relayhub import metrics_view
from relayhub.web import errors

urlpatterns = [
    # The address `make run` prints and a browser opens first; the hub's only page for people is the admin.
    path("", RedirectView.as_view(url=reverse_lazy("admin:index")), name="root"),
    path("", include("relayhub.relay_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("relayhub.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("metrics", metrics_view.metrics_view, name="metrics"),
    # The split view serves its set-up script from a URL, so the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # JSON, even with DEBUG on, for anything a program or relay may call.
    re_path(r"^(relay|api)/", csrf_exempt(errors.handler404)),
]

handler400 = "relayhub.web.errors.handler400"
handler403 = "relayhub.web.errors.handler403"
handler404 = "relayhub.web.errors.handler404"
handler500 = "relayhub.web.errors.handler500"
