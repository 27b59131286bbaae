from django.urls import path

from . import direct, views

urlpatterns = [
    path("telemetry", direct.first(direct.post_reading, views.TelemetryIngestView.as_view()), name="telemetry-ingest"),
    path("devices/telemetry", views.OwnTelemetryView.as_view(), name="device-telemetry"),
    path("telemetry/status", views.TelemetryStatusView.as_view(), name="telemetry-status"),
    path("telemetry/<int:device_id>", views.TelemetryHistoryView.as_view(), name="telemetry-history"),
    path(
        "telemetry/<int:device_id>/latest",
        direct.first(direct.get_latest, views.TelemetryLatestView.as_view()),
        name="telemetry-latest",
    ),
    path("telemetry/<int:device_id>/aggregated", views.TelemetryAggregatedView.as_view(), name="telemetry-aggregated"),
]
