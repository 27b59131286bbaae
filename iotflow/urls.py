from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

# Most traffic is devices sending telemetry: Django tries patterns in order, so theirs come first.
api_v1 = [
    path("", include("telemetry.api.urls")),
    path("", include("devices.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("dashboards.api.urls")),
]


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs, plain errors)."""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("img/favicon.svg")


urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health", health.health, name="health"),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("devices/", include("devices.urls")),
    path("", include("notifications.urls")),
    path("", include("dashboards.urls")),
]

# An unreachable database answers 503 with Retry-After instead of a server error; an unknown
# address under /api/ answers JSON as the API's own 404s do (iotflow.errors).
handler500 = "iotflow.errors.server_error"
handler404 = "iotflow.errors.page_not_found"
