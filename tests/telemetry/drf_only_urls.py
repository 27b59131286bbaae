"""The busiest device endpoints served by their DRF views alone: the reference the direct path must match."""

from django.urls import path

from telemetry.api import views

urlpatterns = [
    path("api/v1/telemetry", views.TelemetryIngestView.as_view()),
    path("api/v1/telemetry/<int:device_id>/latest", views.TelemetryLatestView.as_view()),
]
