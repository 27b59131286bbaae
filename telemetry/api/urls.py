from django.urls import path

from . import views

urlpatterns = [
    path("telemetry", views.TelemetryIngestView.as_view(), name="telemetry-ingest"),
    path("devices/telemetry", views.OwnTelemetryView.as_view(), name="device-telemetry"),
    path("telemetry/status", views.TelemetryStatusView.as_view(), name="telemetry-status"),
    path("telemetry/<int:device_id>", views.TelemetryHistoryView.as_view(), name="telemetry-history"),
    path("telemetry/<int:device_id>/latest", views.TelemetryLatestView.as_view(), name="telemetry-latest"),
    path("telemetry/<int:device_id>/aggregated", views.TelemetryAggregatedView.as_view(), name="telemetry-aggregated"),
]
